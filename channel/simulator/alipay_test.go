package simulator_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	sdk "github.com/smartwalle/alipay/v3"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/simulator"
)

var aliCreated = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// aliGateway is a simulator server and the keys it speaks with.
type aliGateway struct {
	t      *testing.T
	sim    *simulator.Sim
	orders *simulator.Orders
	keys   simulator.Keys
	url    string
}

func newAliGateway(t *testing.T) *aliGateway {
	t.Helper()
	k, err := simulator.TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	g := &aliGateway{t: t, sim: simulator.New(simulator.Config{Seed: 1, RetryAfter: 2 * time.Second}),
		orders: simulator.NewOrders(), keys: k}
	srv := httptest.NewServer(g.sim.Server(g.orders, k))
	t.Cleanup(srv.Close)
	g.url = srv.URL + simulator.AlipayGatewayPath
	return g
}

// add registers an order with behaviour b.
func (g *aliGateway) add(no string, amount int64, currency string, b simulator.Behaviour) recon.Order {
	o := recon.Order{OrderNo: no, Amount: amount, Currency: currency, Status: recon.StatusPending, CreatedAt: aliCreated}
	g.orders.Add(o)
	g.sim.Set(no, b)
	return o
}

// form is a correctly signed request of method about orderNo.
func (g *aliGateway) form(method, orderNo string) url.Values {
	g.t.Helper()
	v, err := alipay.Request(g.keys.AlipayAppID, g.keys.AlipayAppKey, method, orderNo, time.Now())
	if err != nil {
		g.t.Fatal(err)
	}
	return v
}

// resign replaces the sign of v with key's signature of its content.
func resign(t *testing.T, v url.Values, key *rsa.PrivateKey) url.Values {
	t.Helper()
	sig, err := alipay.Sign(key, alipay.SignContent(v))
	if err != nil {
		t.Fatal(err)
	}
	v.Set("sign", sig)
	return v
}

// post sends v and returns the status and body.
func (g *aliGateway) post(v url.Values) (int, []byte) {
	g.t.Helper()
	resp, err := http.PostForm(g.url, v)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// node posts v and returns the answer's node (verified with the gateway's
// key when signed) and whether it was signed.
func (g *aliGateway) node(v url.Values) (alipay.TradeQuery, bool) {
	g.t.Helper()
	code, body := g.post(v)
	if code != http.StatusOK {
		g.t.Fatalf("HTTP %d: %s", code, body)
	}
	node, sig, err := alipay.SplitResponse(body, v.Get("method"))
	if err != nil {
		g.t.Fatal(err)
	}
	if sig != "" {
		if err := alipay.Verify(&g.keys.AlipayKey.PublicKey, node, sig); err != nil {
			g.t.Fatalf("answer does not verify: %v: %s", err, body)
		}
	}
	var q alipay.TradeQuery
	if err := json.Unmarshal(node, &q); err != nil {
		g.t.Fatal(err)
	}
	return q, sig != ""
}

func TestAlipayGatewayChecksRequests(t *testing.T) {
	g := newAliGateway(t)
	g.add("A1", 12345, "CNY", simulator.Behaviour{Status: recon.ChannelPending})
	app, gw := g.keys.AlipayAppKey, g.keys.AlipayKey
	for _, tc := range []struct {
		name    string
		set     map[string]string // parameters changed after signing; "" deletes
		key     *rsa.PrivateKey   // signs again after the change; nil keeps the sign
		subCode string
		signed  bool
	}{
		{"valid", nil, nil, "", true},
		{"unknown app", map[string]string{"app_id": "2021999999999999"}, app, "isv.invalid-app-id", false},
		{"no app", map[string]string{"app_id": ""}, app, "isv.missing-app-id", false},
		{"signed with another key", nil, gw, "isv.invalid-signature", true},
		{"changed after signing", map[string]string{"biz_content": `{"out_trade_no":"A2"}`}, nil, "isv.invalid-signature", true},
		{"no sign", map[string]string{"sign": ""}, nil, "isv.missing-signature", true},
		{"RSA1", map[string]string{"sign_type": "RSA"}, app, "isv.invalid-signature-type", true},
		{"bad timestamp", map[string]string{"timestamp": "2024-03-01T12:00:00Z"}, app, "isv.invalid-timestamp", true},
		{"no out_trade_no", map[string]string{"biz_content": `{"trade_no":"x"}`}, app, alipay.SubInvalidParameter, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := g.form(alipay.MethodQuery, "A1")
			for k, val := range tc.set {
				if val == "" {
					v.Del(k)
				} else {
					v.Set(k, val)
				}
			}
			if tc.key != nil {
				v = resign(t, v, tc.key)
			}
			q, signed := g.node(v)
			if q.SubCode != tc.subCode || signed != tc.signed {
				t.Fatalf("answer %+v (signed %v), want sub_code %q (signed %v)", q, signed, tc.subCode, tc.signed)
			}
			if tc.subCode == "" && q.Code != alipay.CodeSuccess {
				t.Fatalf("valid request answered %+v", q)
			}
		})
	}

	// Methods the gateway does not know are answered in error_response.
	for method, sub := range map[string]string{"": "isv.missing-method", "alipay.trade.refund": "isv.invalid-method"} {
		v := g.form(alipay.MethodQuery, "A1")
		v.Set("method", method)
		_, body := g.post(resign(t, v, g.keys.AlipayAppKey))
		if !strings.HasPrefix(string(body), `{"error_response":{`) || !strings.Contains(string(body), sub) {
			t.Errorf("method %q: %s", method, body)
		}
	}
	// GET with the parameters in the query string, as the gateway allows.
	resp, err := http.Get(g.url + "?" + g.form(alipay.MethodQuery, "A1").Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"trade_status":"WAIT_BUYER_PAY"`) {
		t.Errorf("GET answered %s", b)
	}
	req, _ := http.NewRequest(http.MethodPut, g.url, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %v %v", resp, err)
	}
}

func TestAlipayGatewayAnswers(t *testing.T) {
	g := newAliGateway(t)
	paidO := g.add("P1", 12345, "CNY", simulator.Behaviour{Status: recon.ChannelPaid})
	q, _ := g.node(g.form(alipay.MethodQuery, "P1"))
	paidAt, _ := time.ParseInLocation(alipay.TimeLayout, q.SendPayDate, alipay.Beijing)
	if q.Code != alipay.CodeSuccess || q.TradeStatus != alipay.TradeSuccess || q.TotalAmount != "123.45" ||
		q.TransCurrency != "" || q.OutTradeNo != "P1" || q.TradeNo != g.sim.TxnID("P1") || paidAt.Before(paidO.CreatedAt) {
		t.Errorf("paid answer %+v", q)
	}

	for _, tc := range []struct {
		name       string
		amount     int64
		currency   string
		b          simulator.Behaviour
		status     string
		total      alipay.Amount
		transCur   string
		subCode    string
		code       string
		httpStatus int
	}{
		{name: "yen", amount: 500, currency: "JPY", b: simulator.Behaviour{Status: recon.ChannelPaid}, status: alipay.TradeSuccess, total: "500", transCur: "JPY", code: "10000"},
		{name: "tampered currency", amount: 100, currency: "CNY", b: simulator.Behaviour{Status: recon.ChannelPaid, Currency: "USD"}, status: alipay.TradeSuccess, total: "1.00", transCur: "USD", code: "10000"},
		{name: "tampered amount", amount: 100, currency: "CNY", b: simulator.Behaviour{Status: recon.ChannelPaid, Amount: 101}, status: alipay.TradeSuccess, total: "1.01", code: "10000"},
		{name: "pending", amount: 100, currency: "CNY", b: simulator.Behaviour{Status: recon.ChannelPending}, status: alipay.TradeWaitBuyerPay, total: "1.00", code: "10000"},
		{name: "closed", amount: 100, currency: "CNY", b: simulator.Behaviour{Status: recon.ChannelClosed}, status: alipay.TradeClosed, total: "1.00", code: "10000"},
		{name: "failed is closed", amount: 100, currency: "CNY", b: simulator.Behaviour{Status: recon.ChannelFailed}, status: alipay.TradeClosed, total: "1.00", code: "10000"},
		{name: "stale timestamp changes nothing", amount: 100, currency: "CNY", b: simulator.Behaviour{Status: recon.ChannelPaid, StaleTimestamp: true}, status: alipay.TradeSuccess, total: "1.00", code: "10000"},
		{name: "not found", b: simulator.Behaviour{Status: recon.ChannelNotFound}, code: "40004", subCode: alipay.SubTradeNotExist},
		{name: "transient", b: simulator.Behaviour{Status: recon.ChannelPaid, TransientFailures: 5}, code: "20000", subCode: "isp.unknow-error"},
		{name: "permanent", b: simulator.Behaviour{Status: recon.ChannelPaid, PermanentError: true}, code: "40006", subCode: "isv.insufficient-isv-permissions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			no := "Q" + strings.ReplaceAll(tc.name, " ", "_")
			g.add(no, tc.amount, tc.currency, tc.b)
			q, signed := g.node(g.form(alipay.MethodQuery, no))
			if !signed || q.Code != tc.code || q.SubCode != tc.subCode || q.TradeStatus != tc.status || q.TotalAmount != tc.total || q.TransCurrency != tc.transCur {
				t.Fatalf("answer %+v (signed %v)", q, signed)
			}
		})
	}

	t.Run("unknown order", func(t *testing.T) {
		q, signed := g.node(g.form(alipay.MethodQuery, "nobody"))
		if !signed || q.SubCode != alipay.SubTradeNotExist {
			t.Fatalf("answer %+v", q)
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		g.add("R1", 100, "CNY", simulator.Behaviour{Status: recon.ChannelPaid, RateLimits: 1})
		resp, err := http.PostForm(g.url, g.form(alipay.MethodQuery, "R1"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
			t.Fatalf("HTTP %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		g.add("B1", 100, "CNY", simulator.Behaviour{Status: recon.ChannelPaid, BadSignature: true})
		_, body := g.post(g.form(alipay.MethodQuery, "B1"))
		if _, err := alipay.Open(&g.keys.AlipayKey.PublicKey, body, alipay.MethodQuery); !errors.Is(err, channel.ErrBadSignature) {
			t.Fatalf("Open = %v, want a bad signature", err)
		}
		// It is a real signature, by the app's key: the body is intact.
		if _, err := alipay.Open(&g.keys.AlipayAppKey.PublicKey, body, alipay.MethodQuery); err != nil {
			t.Fatalf("Open with the app key = %v", err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		g.add("M1", 100, "CNY", simulator.Behaviour{Status: recon.ChannelPaid, Malformed: true})
		_, body := g.post(g.form(alipay.MethodQuery, "M1"))
		node, err := alipay.Open(&g.keys.AlipayKey.PublicKey, body, alipay.MethodQuery)
		if err != nil {
			t.Fatalf("Open = %v, want a correctly signed body", err)
		}
		if _, err := alipay.ParseQuery(node, "M1"); !errors.Is(err, channel.ErrMalformed) {
			t.Fatalf("ParseQuery = %v, want malformed", err)
		}
	})
}

func TestAlipayGatewayCloses(t *testing.T) {
	g := newAliGateway(t)
	for _, tc := range []struct {
		name    string
		b       simulator.Behaviour
		code    string
		subCode string
		after   string // trade_status of a lookup after the close
	}{
		{name: "pending", b: simulator.Behaviour{Status: recon.ChannelPending}, code: "10000", after: alipay.TradeClosed},
		{name: "closed", b: simulator.Behaviour{Status: recon.ChannelClosed}, code: "10000", after: alipay.TradeClosed},
		{name: "paid", b: simulator.Behaviour{Status: recon.ChannelPaid}, code: "40004", subCode: alipay.SubTradeStatusError, after: alipay.TradeSuccess},
		{name: "paid on close", b: simulator.Behaviour{Status: recon.ChannelPending, PayOnClose: true}, code: "40004", subCode: alipay.SubTradeStatusError, after: alipay.TradeSuccess},
		{name: "failed", b: simulator.Behaviour{Status: recon.ChannelFailed}, code: "40004", subCode: alipay.SubTradeStatusError},
		{name: "not found", b: simulator.Behaviour{Status: recon.ChannelNotFound}, code: "40004", subCode: alipay.SubTradeNotExist},
		{name: "permanent", b: simulator.Behaviour{Status: recon.ChannelPending, PermanentError: true}, code: "40006", subCode: "isv.insufficient-isv-permissions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			no := "C" + strings.ReplaceAll(tc.name, " ", "_")
			g.add(no, 100, "CNY", tc.b)
			q, signed := g.node(g.form(alipay.MethodClose, no))
			if !signed || q.Code != tc.code || q.SubCode != tc.subCode {
				t.Fatalf("close answered %+v (signed %v)", q, signed)
			}
			if q.Code == alipay.CodeSuccess && (q.OutTradeNo != no || q.TradeNo == "") {
				t.Errorf("close answer without ids: %+v", q)
			}
			if tc.after != "" {
				if q, _ := g.node(g.form(alipay.MethodQuery, no)); q.TradeStatus != tc.after {
					t.Errorf("lookup after close: %+v, want %s", q, tc.after)
				}
			}
		})
	}
	q, _ := g.node(g.form(alipay.MethodClose, "nobody"))
	if q.SubCode != alipay.SubTradeNotExist {
		t.Errorf("close of an unknown order: %+v", q)
	}
}

// TestAlipayGatewaySpeaksToTheSDK points the SDK's client at the simulator:
// the simulator verifies the SDK's request signatures, and the SDK verifies
// and decodes the simulator's answers.
func TestAlipayGatewaySpeaksToTheSDK(t *testing.T) {
	g := newAliGateway(t)
	der, err := x509.MarshalPKCS8PrivateKey(g.keys.AlipayAppKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.New(g.keys.AlipayAppID, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), true,
		sdk.WithProductionGateway(g.url))
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&g.keys.AlipayKey.PublicKey)
	if err := c.LoadAliPayPublicKey(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	g.add("S1", 12345, "CNY", simulator.Behaviour{Status: recon.ChannelPaid})
	rsp, err := c.TradeQuery(ctx, sdk.TradeQuery{OutTradeNo: "S1"})
	if err != nil || rsp.Code != sdk.CodeSuccess || rsp.TradeStatus != sdk.TradeStatusSuccess || rsp.TotalAmount != "123.45" || rsp.TradeNo != g.sim.TxnID("S1") {
		t.Fatalf("SDK TradeQuery = %+v, %v", rsp, err)
	}
	// A signed business failure is err == nil with the failure's code.
	rsp, err = c.TradeQuery(ctx, sdk.TradeQuery{OutTradeNo: "nobody"})
	if err != nil || rsp.Code != "40004" || rsp.SubCode != alipay.SubTradeNotExist {
		t.Fatalf("SDK TradeQuery(unknown) = %+v, %v", rsp, err)
	}
	g.add("S2", 100, "CNY", simulator.Behaviour{Status: recon.ChannelPending})
	crsp, err := c.TradeClose(ctx, sdk.TradeClose{OutTradeNo: "S2"})
	if err != nil || crsp.Code != sdk.CodeSuccess || crsp.OutTradeNo != "S2" {
		t.Fatalf("SDK TradeClose = %+v, %v", crsp, err)
	}
	if rsp, err := c.TradeQuery(ctx, sdk.TradeQuery{OutTradeNo: "S2"}); err != nil || rsp.TradeStatus != sdk.TradeStatusClosed {
		t.Fatalf("SDK TradeQuery after close = %+v, %v", rsp, err)
	}
	g.add("S3", 100, "CNY", simulator.Behaviour{Status: recon.ChannelPaid, BadSignature: true})
	if rsp, err := c.TradeQuery(ctx, sdk.TradeQuery{OutTradeNo: "S3"}); err == nil {
		t.Fatalf("SDK accepted a bad signature: %+v", rsp)
	}
}
