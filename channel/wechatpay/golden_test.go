package wechatpay_test

// Golden tests: WeChat Pay's documented examples, and the official Go SDK
// (github.com/wechatpay-apiv3/wechatpay-go) as an independent implementation
// that must agree with this package and with the simulator both ways, so
// that neither can drift from the real wire format.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/credentials"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/signers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/validators"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/consts"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/jsapi"
	"github.com/wechatpay-apiv3/wechatpay-go/services/refunddomestic"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/channel/wechatpay"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// docRequest is doc_request_signature.json: the request, test key and
// signature of the signing guide "请求参数里带Body参数，如何计算签名"
// (pay.weixin.qq.com/doc/v3/merchant/4012365336), which publishes them so
// that an implementation can be checked to the byte.
type docRequest struct {
	MchID     string `json:"mchid"`
	SerialNo  string `json:"serial_no"`
	Method    string `json:"method"`
	URL       string `json:"url"`
	Timestamp int64  `json:"timestamp"`
	Nonce     string `json:"nonce_str"`
	Body      string `json:"body"`
	Signature string `json:"signature"`
}

func TestDocumentedRequestSignature(t *testing.T) {
	var doc docRequest
	if err := json.Unmarshal(readTestdata(t, "doc_request_signature.json"), &doc); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join("testdata", "doc_test_key.pem")
	key, err := channel.ReadRSAPrivateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sdkKey, err := utils.LoadPrivateKeyWithPath(keyFile)
	if err != nil || !sdkKey.Equal(key) {
		t.Fatalf("the SDK reads another key: %v", err)
	}

	msg := wechatpay.RequestMessage(doc.Method, doc.URL, doc.Timestamp, doc.Nonce, []byte(doc.Body))
	if sdkMsg := fmt.Sprintf(consts.SignatureMessageFormat, doc.Method, doc.URL, doc.Timestamp, doc.Nonce, doc.Body); msg != sdkMsg {
		t.Fatalf("message %q, the SDK's %q", msg, sdkMsg)
	}
	// Ours, the SDK's and the documented signature are the same bytes.
	sig, err := wechatpay.Sign(key, msg)
	if err != nil || sig != doc.Signature {
		t.Fatalf("our signature differs from the documented one (%v)", err)
	}
	sdkSig, err := (&signers.SHA256WithRSASigner{MchID: doc.MchID, CertificateSerialNo: doc.SerialNo, PrivateKey: sdkKey}).Sign(context.Background(), msg)
	if err != nil || sdkSig.Signature != doc.Signature {
		t.Fatalf("the SDK's signature differs from the documented one (%v)", err)
	}
	if err := wechatpay.VerifySignature(&key.PublicKey, msg, doc.Signature); err != nil {
		t.Errorf("our verifier refuses the documented signature: %v", err)
	}
	if err := verifiers.NewSHA256WithRSAPubkeyVerifier(doc.SerialNo, key.PublicKey).Verify(context.Background(), doc.SerialNo, msg, sig); err != nil {
		t.Errorf("the SDK's verifier refuses our signature: %v", err)
	}

	// The header in the SDK's parameter order parses to what ours renders,
	// and passes the server-side check at its own time.
	want := wechatpay.Authorization{MchID: doc.MchID, Nonce: doc.Nonce, Signature: doc.Signature, Timestamp: doc.Timestamp, SerialNo: doc.SerialNo}
	sdkHeader := fmt.Sprintf(consts.HeaderAuthorizationFormat, wechatpay.AuthScheme, doc.MchID, doc.Nonce, doc.Timestamp, doc.SerialNo, doc.Signature)
	for _, h := range []string{sdkHeader, want.String()} {
		if got, err := wechatpay.ParseAuthorization(h); err != nil || got != want {
			t.Errorf("ParseAuthorization(%q) = %+v, %v; want %+v", h, got, err, want)
		}
	}
	if _, err := wechatpay.VerifyRequest(&key.PublicKey, sdkHeader, doc.Method, doc.URL, []byte(doc.Body), time.Unix(doc.Timestamp, 0)); err != nil {
		t.Errorf("VerifyRequest(documented request) = %v", err)
	}
	if _, err := wechatpay.VerifyRequest(&key.PublicKey, sdkHeader, doc.Method, doc.URL, []byte(doc.Body), time.Unix(doc.Timestamp, 0).Add(time.Hour)); !errors.Is(err, channel.ErrBadSignature) {
		t.Errorf("VerifyRequest(documented request, an hour later) = %v, want a stale-timestamp refusal", err)
	}
}

func TestDocumentedMessages(t *testing.T) {
	for _, tc := range []struct{ name, got, want string }{
		// 签名生成: the signing guide's GET /v3/certificates.
		{"request without body",
			wechatpay.RequestMessage("GET", "/v3/certificates", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242", nil),
			"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"},
		// 如何使用微信支付公钥验签: the verification guide's Native order answer.
		{"response",
			wechatpay.ResponseMessage("1722850421", "d824f2e086d3c1df967785d13fcd22ef", []byte(`{"code_url":"weixin://wxpay/bizpayurl?pr=JyC91EIz1"}`)),
			"1722850421\nd824f2e086d3c1df967785d13fcd22ef\n{\"code_url\":\"weixin://wxpay/bizpayurl?pr=JyC91EIz1\"}\n"},
		// "若应答报文主体为空（如204 No Content），最后一行仅为一个\n".
		{"204 response", wechatpay.ResponseMessage("1722850421", "d824f2e086d3c1df967785d13fcd22ef", nil),
			"1722850421\nd824f2e086d3c1df967785d13fcd22ef\n\n"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseDocumentedBodies(t *testing.T) {
	const no, mch = "1217752501201407033233368018", "1230000109"
	paidAt := time.Date(2018, 6, 8, 2, 34, 56, 0, time.UTC)
	for _, tc := range []struct {
		file string
		want recon.LookupResult
	}{
		// 商户订单号查询订单: the documented answer, total 100 fen of which the
		// payer paid 90 (a coupon paid 10).
		{"query_success.json", recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: no, PaidAt: &paidAt}},
		// An unpaid order: no currency, no transaction id.
		{"query_notpay.json", recon.LookupResult{Status: recon.ChannelPending, Amount: 100}},
	} {
		body := readTestdata(t, tc.file)
		got, err := wechatpay.ParseTransaction(body, no, mch)
		if err != nil || !sameResult(got, tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.file, got, err, tc.want)
		}
		// The SDK's model reads the same fields out of the same bytes.
		var tx payments.Transaction
		if err := json.Unmarshal(body, &tx); err != nil {
			t.Fatalf("%s: the SDK cannot read it: %v", tc.file, err)
		}
		if *tx.OutTradeNo != no || *tx.Amount.Total != got.Amount || deref(tx.Amount.Currency) != got.Currency ||
			deref(tx.TransactionId) != got.TxnID || wechatpay.TradeStates[*tx.TradeState] != got.Status {
			t.Errorf("%s: the SDK reads %s", tc.file, body)
		}
	}

	for _, tc := range []struct{ file, code, message string }{
		{"error_order_not_exist.json", wechatpay.CodeOrderNotExist, "订单不存在"},
		// 基本规则: the interface rules' error example, with detail.
		{"error_param_error.json", "PARAM_ERROR", "参数错误"},
	} {
		body := readTestdata(t, tc.file)
		e, err := wechatpay.ParseAPIError(body)
		if err != nil || e.Code != tc.code || e.Message != tc.message {
			t.Errorf("%s: %+v, %v", tc.file, e, err)
		}
		var sdk core.APIError
		if err := json.Unmarshal(body, &sdk); err != nil || sdk.Code != e.Code || sdk.Message != e.Message {
			t.Errorf("%s: the SDK reads %+v, %v", tc.file, sdk, err)
		}
	}
	if e, _ := wechatpay.ParseAPIError(readTestdata(t, "error_param_error.json")); !strings.Contains(string(e.Detail), "/amount/currency") {
		t.Errorf("detail lost: %s", e.Detail)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func sameResult(a, b recon.LookupResult) bool {
	pa, pb := a.PaidAt, b.PaidAt
	a.PaidAt, b.PaidAt = nil, nil
	if a != b || (pa == nil) != (pb == nil) {
		return false
	}
	return pa == nil || pa.Equal(*pb)
}

// TestSignaturesAgreeWithSDK signs with this package and verifies with the
// SDK, and the other way round, for requests and responses.
func TestSignaturesAgreeWithSDK(t *testing.T) {
	keys := testKeys(t)
	ctx := context.Background()
	const uri = "/v3/pay/transactions/out-trade-no/A-1?mchid=1900000001"
	body := []byte(`{"mchid":"1900000001"}`)

	// Requests: ours → the SDK's verifier.
	a, err := wechatpay.SignRequest(keys.WechatMerchantKey, keys.WechatMchID, keys.WechatMerchantSerial, "POST", uri, body, time.Now().Unix(), wechatpay.NewNonce())
	if err != nil {
		t.Fatal(err)
	}
	merchant := verifiers.NewSHA256WithRSAPubkeyVerifier(keys.WechatMerchantSerial, keys.WechatMerchantKey.PublicKey)
	sdkMsg := fmt.Sprintf(consts.SignatureMessageFormat, "POST", uri, a.Timestamp, a.Nonce, body)
	if err := merchant.Verify(ctx, a.SerialNo, sdkMsg, a.Signature); err != nil {
		t.Errorf("the SDK refuses our request signature: %v", err)
	}
	// Requests: the SDK's credentials → ours.
	creds := credentials.WechatPayCredentials{Signer: &signers.SHA256WithRSASigner{
		MchID: keys.WechatMchID, CertificateSerialNo: keys.WechatMerchantSerial, PrivateKey: keys.WechatMerchantKey}}
	header, err := creds.GenerateAuthorizationHeader(ctx, "POST", uri, string(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := wechatpay.VerifyRequest(&keys.WechatMerchantKey.PublicKey, header, "POST", uri, body, time.Now())
	if err != nil || got.MchID != keys.WechatMchID || got.SerialNo != keys.WechatMerchantSerial {
		t.Errorf("we refuse the SDK's Authorization: %+v, %v", got, err)
	}
	if _, err := wechatpay.VerifyRequest(&keys.WechatMerchantKey.PublicKey, header, "POST", uri, []byte(`{}`), time.Now()); !errors.Is(err, channel.ErrBadSignature) {
		t.Errorf("the SDK's Authorization verifies for another body: %v", err)
	}

	// Responses: ours (the simulator's signing) → the SDK's validator.
	platform := verifiers.NewSHA256WithRSAPubkeyVerifier(keys.WechatPlatformKeyID, keys.WechatPlatformKey.PublicKey)
	resp := readTestdata(t, "query_success.json")
	h := http.Header{}
	if err := wechatpay.SignResponse(h, keys.WechatPlatformKey, keys.WechatPlatformKeyID, time.Now().Unix(), "n0nce", resp); err != nil {
		t.Fatal(err)
	}
	if err := validators.NewWechatPayResponseValidator(platform).Validate(ctx, &http.Response{Header: h, Body: io.NopCloser(strings.NewReader(string(resp)))}); err != nil {
		t.Errorf("the SDK refuses our response signature: %v", err)
	}
	// Responses: the SDK's signer → our verifier.
	sdkH := sdkSign(t, keys, time.Now(), resp)
	v := wechatpay.Verifier{KeyID: keys.WechatPlatformKeyID, Key: &keys.WechatPlatformKey.PublicKey}
	if err := v.Verify(sdkH, resp); err != nil {
		t.Errorf("we refuse the SDK's response signature: %v", err)
	}
	if err := v.Verify(sdkH, append(resp, ' ')); !errors.Is(err, channel.ErrBadSignature) {
		t.Errorf("a changed body verifies: %v", err)
	}
}

// sdkSign signs a response body with the SDK's signer and the platform key,
// over the message the SDK's validator builds.
func sdkSign(t *testing.T, keys simulator.Keys, now time.Time, body []byte) http.Header {
	t.Helper()
	ts, nonce := strconv.FormatInt(now.Unix(), 10), utilsNonce(t)
	s := &signers.SHA256WithRSASigner{CertificateSerialNo: keys.WechatPlatformKeyID, PrivateKey: keys.WechatPlatformKey}
	sig, err := s.Sign(context.Background(), fmt.Sprintf("%s\n%s\n%s\n", ts, nonce, body))
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{
		consts.WechatPayTimestamp: {ts}, consts.WechatPayNonce: {nonce},
		consts.WechatPaySignature: {sig.Signature}, consts.WechatPaySerial: {sig.CertificateSerialNo},
	}
}

func utilsNonce(t *testing.T) string {
	n, err := utils.GenerateNonce()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rewriteHost sends every request to target, whatever host the SDK's
// services address (they hard-code api.mch.weixin.qq.com). The signature
// covers the path and query only, so it survives.
type rewriteHost struct{ target *url.URL }

func (rw rewriteHost) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host, req.Host = rw.target.Scheme, rw.target.Host, ""
	return http.DefaultTransport.RoundTrip(req)
}

func sdkClient(t *testing.T, srvURL string, keys simulator.Keys) *core.Client {
	t.Helper()
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.NewClient(context.Background(),
		option.WithWechatPayPublicKeyAuthCipher(keys.WechatMchID, keys.WechatMerchantSerial, keys.WechatMerchantKey,
			keys.WechatPlatformKeyID, &keys.WechatPlatformKey.PublicKey),
		option.WithHTTPClient(&http.Client{Transport: rewriteHost{u}, Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSDKClientAgainstSimulator points the official SDK's own client at the
// simulator: it signs the requests (the simulator must accept them) and
// validates every 2xx answer (the simulator's signatures must pass).
func TestSDKClientAgainstSimulator(t *testing.T) {
	keys := testKeys(t)
	sim := simulator.New(simulator.Config{Seed: 1})
	orders := simulator.NewOrders()
	srv := httptest.NewServer(sim.Server(orders, keys))
	t.Cleanup(srv.Close)
	add := func(no string, b simulator.Behaviour) string {
		orders.Add(recon.Order{OrderNo: no, Amount: 12345, Currency: "CNY", Status: recon.StatusPending,
			CreatedAt: time.Now().Add(-time.Hour).Truncate(time.Second)})
		sim.Set(no, b)
		return no
	}
	svc := jsapi.JsapiApiService{Client: sdkClient(t, srv.URL, keys)}
	ctx := context.Background()
	query := func(no string) (*payments.Transaction, error) {
		tx, _, err := svc.QueryOrderByOutTradeNo(ctx, jsapi.QueryOrderByOutTradeNoRequest{OutTradeNo: core.String(no), Mchid: core.String(keys.WechatMchID)})
		return tx, err
	}
	closeOrder := func(no string) error {
		_, err := svc.CloseOrder(ctx, jsapi.CloseOrderRequest{OutTradeNo: core.String(no), Mchid: core.String(keys.WechatMchID)})
		return err
	}

	paid := add("SDK-paid", simulator.Behaviour{Status: recon.ChannelPaid})
	tx, err := query(paid)
	if err != nil {
		t.Fatalf("query paid: %v", err)
	}
	if *tx.TradeState != "SUCCESS" || *tx.Amount.Total != 12345 || *tx.Amount.PayerTotal != 12345 ||
		deref(tx.Amount.Currency) != "CNY" || deref(tx.TransactionId) != sim.TxnID(paid) || *tx.Mchid != keys.WechatMchID {
		t.Errorf("paid transaction as the SDK reads it: %+v", tx)
	}
	if _, err := time.Parse(time.RFC3339, deref(tx.SuccessTime)); err != nil {
		t.Errorf("success_time: %v", err)
	}

	pending := add("SDK-pending", simulator.Behaviour{Status: recon.ChannelPending})
	if tx, err := query(pending); err != nil || *tx.TradeState != "NOTPAY" || tx.Amount.Currency != nil || tx.TransactionId != nil {
		t.Errorf("pending transaction: %+v, %v", tx, err)
	}
	if _, err := query(add("SDK-unknown", simulator.Behaviour{Status: recon.ChannelNotFound})); !core.IsAPIError(err, wechatpay.CodeOrderNotExist) {
		t.Errorf("unknown order: %v, want APIError ORDER_NOT_EXIST", err)
	}

	// The SDK's validator catches the simulator's forged and stale answers.
	var apiErr *core.APIError
	if _, err := query(add("SDK-forged", simulator.Behaviour{Status: recon.ChannelPaid, BadSignature: true})); err == nil || errors.As(err, &apiErr) {
		t.Errorf("forged answer: %v, want a validation failure", err)
	}
	if _, err := query(add("SDK-stale", simulator.Behaviour{Status: recon.ChannelPaid, StaleTimestamp: true})); err == nil || !strings.Contains(err.Error(), "expires") {
		t.Errorf("stale answer: %v, want the SDK's timestamp refusal", err)
	}

	// Close: the 204 is signed (the SDK validates it); a paid order is refused.
	if err := closeOrder(pending); err != nil {
		t.Errorf("close pending: %v", err)
	}
	if tx, err := query(pending); err != nil || *tx.TradeState != "CLOSED" {
		t.Errorf("after close: %+v, %v", tx, err)
	}
	if err := closeOrder(paid); !core.IsAPIError(err, wechatpay.CodeOrderPaid) {
		t.Errorf("close paid: %v, want APIError ORDERPAID", err)
	}

	// A request signed with another key is refused as WeChat Pay does.
	forger := keys
	forger.WechatMerchantKey = keys.WechatPlatformKey
	bad := jsapi.JsapiApiService{Client: sdkClient(t, srv.URL, forger)}
	if _, _, err := bad.QueryOrderByOutTradeNo(ctx, jsapi.QueryOrderByOutTradeNoRequest{OutTradeNo: core.String(paid), Mchid: core.String(keys.WechatMchID)}); !core.IsAPIError(err, wechatpay.CodeSignError) {
		t.Errorf("forged request: %v, want APIError SIGN_ERROR", err)
	}
}

// TestAdapterAgainstSDKServer runs the adapter against a server built from
// the SDK's pieces and the documented bodies, not from the simulator: the
// SDK's verifier checks our requests, the SDK's signer signs the answers.
func TestAdapterAgainstSDKServer(t *testing.T) {
	keys := testKeys(t)
	const no, mch = "1217752501201407033233368018", "1230000109" // the documented example's
	answer := readTestdata(t, "query_success.json")
	param := regexp.MustCompile(`(\w+)="([^"]*)"`)
	merchant := verifiers.NewSHA256WithRSAPubkeyVerifier(keys.WechatMerchantSerial, keys.WechatMerchantKey.PublicKey)
	var requests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		body, _ := io.ReadAll(r.Body)
		p := map[string]string{}
		for _, m := range param.FindAllStringSubmatch(r.Header.Get("Authorization"), -1) {
			p[m[1]] = m[2]
		}
		msg := fmt.Sprintf("%s\n%s\n%s\n%s\n%s\n", r.Method, r.RequestURI, p["timestamp"], p["nonce_str"], body)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "WECHATPAY2-SHA256-RSA2048 ") || p["mchid"] != mch ||
			merchant.Verify(r.Context(), p["serial_no"], msg, p["signature"]) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var out []byte
		switch {
		case r.Method == http.MethodGet && r.URL.Path == wechatpay.TransactionsPath+no && r.URL.Query().Get("mchid") == mch:
			out = answer
		case r.Method == http.MethodPost && r.URL.Path == wechatpay.TransactionsPath+no+"/close" && string(body) == `{"mchid":"`+mch+`"}`:
		default:
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for k, v := range sdkSign(t, keys, time.Now(), out) {
			w.Header()[k] = v
		}
		if out == nil {
			w.WriteHeader(http.StatusNoContent)
		}
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	c, err := wechatpay.New(wechatpay.Config{BaseURL: srv.URL, MchID: mch, CertSerial: keys.WechatMerchantSerial,
		PrivateKey: keys.WechatMerchantKey, PublicKey: &keys.WechatPlatformKey.PublicKey, PublicKeyID: keys.WechatPlatformKeyID})
	if err != nil {
		t.Fatal(err)
	}
	o := recon.Order{OrderNo: no, Amount: 100, Currency: "CNY"}
	got, err := c.Lookup(context.Background(), o)
	paidAt := time.Date(2018, 6, 8, 2, 34, 56, 0, time.UTC)
	if want := (recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: no, PaidAt: &paidAt}); err != nil || !sameResult(got, want) {
		t.Errorf("lookup = %+v, %v; want %+v", got, err, want)
	}
	if err := c.CloseOrder(context.Background(), o); err != nil {
		t.Errorf("close = %v", err)
	}
	if requests != 2 {
		t.Errorf("%d requests, want 2", requests)
	}
}

// TestSDKRefundQueryAgainstSimulator points the SDK's refund query
// (refunddomestic QueryByOutRefundNo) at the simulator: the path, the
// signatures and the body the simulator serves are the ones the official
// client speaks and reads, and the adapter reads the same answers alike.
func TestSDKRefundQueryAgainstSimulator(t *testing.T) {
	keys := testKeys(t)
	sim := simulator.New(simulator.Config{Seed: 1})
	orders := simulator.NewOrders()
	srv := httptest.NewServer(sim.Server(orders, keys))
	t.Cleanup(srv.Close)
	created := time.Now().Add(-time.Hour).Truncate(time.Second)
	add := func(no string, b simulator.RefundBehaviour) recon.Refund {
		r := recon.Refund{RefundNo: no, OrderNo: "O" + no, Amount: 888, Currency: "CNY", Status: recon.RefundPending, CreatedAt: created}
		orders.AddRefund(r)
		sim.SetRefund(no, b)
		return r
	}
	svc := refunddomestic.RefundsApiService{Client: sdkClient(t, srv.URL, keys)}
	ctx := context.Background()
	query := func(no string) (*refunddomestic.Refund, error) {
		rf, _, err := svc.QueryByOutRefundNo(ctx, refunddomestic.QueryByOutRefundNoRequest{OutRefundNo: core.String(no)})
		return rf, err
	}
	cfg := testConfig(keys, srv.URL)
	cfg.Now = nil // the simulator signs at the real time
	adapter, err := wechatpay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		b      simulator.RefundBehaviour
		status refunddomestic.Status
		want   recon.RefundChannelStatus
	}{
		{simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded}, refunddomestic.STATUS_SUCCESS, recon.RefundChannelSucceeded},
		{simulator.RefundBehaviour{Status: recon.RefundChannelFailed}, refunddomestic.STATUS_CLOSED, recon.RefundChannelFailed},
		{simulator.RefundBehaviour{Status: recon.RefundChannelPending}, refunddomestic.STATUS_PROCESSING, recon.RefundChannelPending},
		{simulator.RefundBehaviour{Status: recon.RefundChannelAbnormal}, refunddomestic.STATUS_ABNORMAL, recon.RefundChannelAbnormal},
	} {
		r := add("SDKR-"+string(tc.status), tc.b)
		rf, err := query(r.RefundNo)
		if err != nil {
			t.Fatalf("%s: SDK query: %v", tc.status, err)
		}
		if *rf.Status != tc.status || *rf.OutRefundNo != r.RefundNo || *rf.OutTradeNo != r.OrderNo ||
			*rf.Amount.Refund != 888 || *rf.Amount.Currency != "CNY" || deref(rf.RefundId) != sim.RefundID(r.RefundNo) {
			t.Errorf("%s: the SDK reads %+v", tc.status, rf)
		}
		if (tc.status == refunddomestic.STATUS_SUCCESS) != (rf.SuccessTime != nil) {
			t.Errorf("%s: success_time %v", tc.status, rf.SuccessTime)
		}
		got, err := adapter.LookupRefund(ctx, r)
		if err != nil || got.Status != tc.want || got.ChannelRefundID != deref(rf.RefundId) {
			t.Errorf("%s: the adapter reads %+v, %v", tc.status, got, err)
		}
		if rf.SuccessTime != nil && (got.SucceededAt == nil || !got.SucceededAt.Equal(*rf.SuccessTime)) {
			t.Errorf("%s: succeeded at %v, the SDK reads %v", tc.status, got.SucceededAt, rf.SuccessTime)
		}
	}
	if _, err := query("SDKR-unknown"); !core.IsAPIError(err, wechatpay.CodeResourceNotExists) {
		t.Errorf("unknown refund: %v, want APIError RESOURCE_NOT_EXISTS", err)
	}
	if _, err := query(add("SDKR-forged", simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, BadSignature: true}).RefundNo); err == nil {
		t.Error("the SDK accepted a forged refund answer")
	}
}
