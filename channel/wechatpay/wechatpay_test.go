package wechatpay_test

import (
	"context"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/channel/wechatpay"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testMch = "1900000001"

func testKeys(t *testing.T) simulator.Keys {
	t.Helper()
	keys, err := simulator.TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func testConfig(keys simulator.Keys, baseURL string) wechatpay.Config {
	return wechatpay.Config{Name: "wx", BaseURL: baseURL, MchID: testMch, CertSerial: keys.WechatMerchantSerial,
		PrivateKey: keys.WechatMerchantKey, PublicKey: &keys.WechatPlatformKey.PublicKey,
		PublicKeyID: keys.WechatPlatformKeyID, Now: func() time.Time { return now }}
}

// answer is what the fake server replies; the signing fields spoil the
// signature the way a forger, a replay or a misrouted proxy would.
type answer struct {
	status int
	body   string
	header http.Header
	// unsigned sends no Wechatpay-* headers; key signs instead of the
	// platform key; serial is announced instead of the key ID; at is the
	// signing time instead of now.
	unsigned bool
	key      *rsa.PrivateKey
	serial   string
	at       time.Time
}

// fake is a server answering every request with its next answer, and
// remembering the requests.
type fake struct {
	keys    simulator.Keys
	answer  answer
	request *http.Request
	body    []byte
}

func newFake(t *testing.T) (*fake, *wechatpay.Client) {
	t.Helper()
	f := &fake{keys: testKeys(t)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := wechatpay.New(testConfig(f.keys, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.request = r
	f.body, _ = io.ReadAll(r.Body)
	a := f.answer
	if !a.unsigned {
		key, serial, at := f.keys.WechatPlatformKey, f.keys.WechatPlatformKeyID, now
		if a.key != nil {
			key = a.key
		}
		if a.serial != "" {
			serial = a.serial
		}
		if !a.at.IsZero() {
			at = a.at
		}
		if err := wechatpay.SignResponse(w.Header(), key, serial, at.Unix(), wechatpay.NewNonce(), []byte(a.body)); err != nil {
			panic(err)
		}
	}
	for k, v := range a.header { // after signing: they may replace its headers
		w.Header()[k] = v
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func paidBody(no string) string {
	return `{"amount":{"currency":"CNY","payer_currency":"CNY","payer_total":90,"total":100},"mchid":"` + testMch +
		`","out_trade_no":"` + no + `","success_time":"2026-03-01T19:59:00+08:00","trade_state":"SUCCESS","transaction_id":"4200001"}`
}

func TestLookupMapsAnswers(t *testing.T) {
	f, c := newFake(t)
	const no = "W-1"
	paidAt := time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC)
	state := func(s string) string {
		return `{"amount":{"payer_currency":"CNY","total":100},"mchid":"` + testMch + `","out_trade_no":"W-1","trade_state":"` + s + `"}`
	}
	for _, tc := range []struct {
		name string
		a    answer
		want recon.LookupResult
	}{
		{"paid", answer{status: 200, body: paidBody(no)},
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: "4200001", PaidAt: &paidAt}},
		{"refund is paid", answer{status: 200, body: strings.Replace(paidBody(no), "SUCCESS", "REFUND", 1)},
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: "4200001", PaidAt: &paidAt}},
		{"lower-case currency", answer{status: 200, body: strings.Replace(paidBody(no), `"currency":"CNY"`, `"currency":"cny"`, 1)},
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: "4200001", PaidAt: &paidAt}},
		{"paid without currency", answer{status: 200, body: strings.Replace(paidBody(no), `"currency":"CNY",`, ``, 1)},
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, TxnID: "4200001", PaidAt: &paidAt}},
		{"notpay", answer{status: 200, body: state("NOTPAY")}, recon.LookupResult{Status: recon.ChannelPending, Amount: 100}},
		{"userpaying", answer{status: 200, body: state("USERPAYING")}, recon.LookupResult{Status: recon.ChannelPending, Amount: 100}},
		{"closed", answer{status: 200, body: state("CLOSED")}, recon.LookupResult{Status: recon.ChannelClosed, Amount: 100}},
		{"revoked", answer{status: 200, body: state("REVOKED")}, recon.LookupResult{Status: recon.ChannelClosed, Amount: 100}},
		{"payerror", answer{status: 200, body: state("PAYERROR")}, recon.LookupResult{Status: recon.ChannelFailed, Amount: 100}},
		{"not found", answer{status: 404, body: `{"code":"ORDER_NOT_EXIST","message":"订单不存在"}`}, recon.LookupResult{Status: recon.ChannelNotFound}},
		{"stamped within the skew", answer{status: 200, body: state("NOTPAY"), at: now.Add(-4 * time.Minute)},
			recon.LookupResult{Status: recon.ChannelPending, Amount: 100}},
	} {
		f.answer = tc.a
		got, err := c.Lookup(context.Background(), recon.Order{OrderNo: no})
		if err != nil || !sameResult(got, tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	f, c := newFake(t)
	const no = "W-2"
	keys := f.keys
	good := paidBody(no)
	for _, tc := range []struct {
		name      string
		a         answer
		class     channel.Class
		is        error
		retry     time.Duration
		errSubstr string
	}{
		{"429 with Retry-After", answer{status: 429, body: `{"code":"FREQUENCY_LIMITED","message":"频率超限"}`, header: http.Header{"Retry-After": {"3"}}},
			channel.ClassRateLimited, nil, 3 * time.Second, "FREQUENCY_LIMITED"},
		{"429 without", answer{status: 429, body: `{"code":"FREQUENCY_LIMITED"}`}, channel.ClassRateLimited, nil, 0, "HTTP 429"},
		{"500", answer{status: 500, body: `{"code":"SYSTEM_ERROR","message":"系统异常"}`}, channel.ClassTransient, nil, 0, "SYSTEM_ERROR"},
		{"503 from a proxy", answer{status: 503, body: "<html>busy</html>", unsigned: true}, channel.ClassTransient, nil, 0, "busy"},
		{"401", answer{status: 401, body: `{"code":"SIGN_ERROR","message":"签名错误"}`}, channel.ClassPermanent, nil, 0, "SIGN_ERROR"},
		{"400", answer{status: 400, body: `{"code":"PARAM_ERROR"}`}, channel.ClassPermanent, nil, 0, "PARAM_ERROR"},
		{"202", answer{status: 202, body: ``}, channel.ClassPermanent, nil, 0, "HTTP 202"},
		{"404 of another kind", answer{status: 404, body: `{"code":"RESOURCE_NOT_EXISTS"}`}, channel.ClassPermanent, nil, 0, "RESOURCE_NOT_EXISTS"},
		{"404 unsigned", answer{status: 404, body: `{"code":"ORDER_NOT_EXIST"}`, unsigned: true}, channel.ClassPermanent, channel.ErrBadSignature, 0, "no Wechatpay-Serial"},
		{"404 not JSON", answer{status: 404, body: `not found`}, channel.ClassPermanent, channel.ErrMalformed, 0, "not found"},
		{"unsigned", answer{status: 200, body: good, unsigned: true}, channel.ClassPermanent, channel.ErrBadSignature, 0, "Wechatpay-Serial"},
		{"forged", answer{status: 200, body: good, key: keys.WechatMerchantKey}, channel.ClassPermanent, channel.ErrBadSignature, 0, "verify"},
		{"another serial", answer{status: 200, body: good, serial: "PUB_KEY_ID_OTHER"}, channel.ClassPermanent, channel.ErrBadSignature, 0, "PUB_KEY_ID_OTHER"},
		{"another signature type", answer{status: 200, body: good, header: http.Header{"Wechatpay-Signature-Type": {"WECHATPAY2-SM2-WITH-SM3"}}},
			channel.ClassPermanent, channel.ErrBadSignature, 0, "SM2"},
		{"stale", answer{status: 200, body: good, at: now.Add(-6 * time.Minute)}, channel.ClassPermanent, channel.ErrBadSignature, 0, "stale"},
		{"from the future", answer{status: 200, body: good, at: now.Add(6 * time.Minute)}, channel.ClassPermanent, channel.ErrBadSignature, 0, "stale"},
		{"another order", answer{status: 200, body: paidBody("W-3")}, channel.ClassPermanent, channel.ErrMalformed, 0, "W-3"},
		{"another merchant", answer{status: 200, body: strings.Replace(good, testMch, "1900000009", 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "mchid"},
		{"unknown state", answer{status: 200, body: strings.Replace(good, "SUCCESS", "ACCEPT", 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "ACCEPT"},
		{"fractional fen", answer{status: 200, body: strings.Replace(good, `"total":100`, `"total":100.5`, 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "total"},
		{"exponent", answer{status: 200, body: strings.Replace(good, `"total":100`, `"total":1e2`, 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "total"},
		{"string amount", answer{status: 200, body: strings.Replace(good, `"total":100`, `"total":"100"`, 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "total"},
		{"overflow", answer{status: 200, body: strings.Replace(good, `"total":100`, `"total":9223372036854775808`, 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "total"},
		{"negative", answer{status: 200, body: strings.Replace(good, `"total":100`, `"total":-1`, 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "negative"},
		{"negative payer_total", answer{status: 200, body: strings.Replace(good, `"payer_total":90`, `"payer_total":-90`, 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "payer_total"},
		{"paid without total", answer{status: 200, body: strings.Replace(good, `"total":100`, `"x":1`, 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "amount.total"},
		{"paid without transaction_id", answer{status: 200, body: strings.Replace(good, `"transaction_id":"4200001"`, `"x":1`, 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "transaction_id"},
		{"bad currency", answer{status: 200, body: strings.Replace(good, `"currency":"CNY"`, `"currency":"YUAN"`, 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "YUAN"},
		{"bad success_time", answer{status: 200, body: strings.Replace(good, "2026-03-01T19:59:00+08:00", "2026-03-01 19:59:00", 1)}, channel.ClassPermanent, channel.ErrMalformed, 0, "success_time"},
		{"truncated", answer{status: 200, body: `{"amount":{"total":`}, channel.ClassPermanent, channel.ErrMalformed, 0, "unexpected end"},
		{"trailing garbage", answer{status: 200, body: good + "x"}, channel.ClassPermanent, channel.ErrMalformed, 0, "after top-level"},
	} {
		f.answer = tc.a
		r, err := c.Lookup(context.Background(), recon.Order{OrderNo: no})
		switch {
		case err == nil:
			t.Errorf("%s: answered %+v, want an error", tc.name, r)
			continue
		case channel.ClassOf(err) != tc.class:
			t.Errorf("%s: class %s, want %s: %v", tc.name, channel.ClassOf(err), tc.class, err)
		case tc.is != nil && !errors.Is(err, tc.is):
			t.Errorf("%s: %v does not wrap %v", tc.name, err, tc.is)
		case channel.RetryAfterOf(err) != tc.retry:
			t.Errorf("%s: retry after %s, want %s", tc.name, channel.RetryAfterOf(err), tc.retry)
		case !strings.Contains(err.Error(), tc.errSubstr) || !strings.Contains(err.Error(), "wechatpay wx: lookup "+no):
			t.Errorf("%s: error %q lacks %q or the operation", tc.name, err, tc.errSubstr)
		}
		if sig := f.lastSignature(); sig != "" && strings.Contains(err.Error(), sig) {
			t.Errorf("%s: error quotes the signature", tc.name)
		}
	}
}

// lastSignature is the signature of the request recon sent last.
func (f *fake) lastSignature() string {
	a, err := wechatpay.ParseAuthorization(f.request.Header.Get("Authorization"))
	if err != nil {
		return ""
	}
	return a.Signature
}

func TestErrorsQuoteBoundedBodies(t *testing.T) {
	f, c := newFake(t)
	f.answer = answer{status: 500, body: strings.Repeat("x", 5000)}
	_, err := c.Lookup(context.Background(), recon.Order{OrderNo: "W-4"})
	if err == nil || len(err.Error()) > 400 || !strings.Contains(err.Error(), "...") {
		t.Errorf("error of %d bytes: %v", len(err.Error()), err)
	}
	f.answer = answer{status: 200, body: strings.Repeat(" ", wechatpay.MaxBodyBytes+1)}
	if _, err := c.Lookup(context.Background(), recon.Order{OrderNo: "W-4"}); !errors.Is(err, channel.ErrMalformed) || channel.ClassOf(err) != channel.ClassPermanent {
		t.Errorf("oversized body: %v", err)
	}
}

func TestRequestsAreSignedAsDocumented(t *testing.T) {
	f, c := newFake(t)
	keys := f.keys
	const no = "A/B 1+2" // escaped in the path, and signed as escaped
	f.answer = answer{status: 200, body: paidBody(no)}
	if _, err := c.Lookup(context.Background(), recon.Order{OrderNo: no}); err != nil {
		t.Fatal(err)
	}
	r := f.request
	if r.Method != http.MethodGet || r.RequestURI != "/v3/pay/transactions/out-trade-no/A%2FB%201+2?mchid="+testMch {
		t.Errorf("request %s %s", r.Method, r.RequestURI)
	}
	a, err := wechatpay.VerifyRequest(&keys.WechatMerchantKey.PublicKey, r.Header.Get("Authorization"), r.Method, r.RequestURI, f.body, now)
	if err != nil || a.MchID != testMch || a.SerialNo != keys.WechatMerchantSerial || a.Timestamp != now.Unix() || len(a.Nonce) != 32 {
		t.Errorf("authorization %+v: %v", a, err)
	}
	if r.Header.Get("Accept") != "application/json" || r.Header.Get("Wechatpay-Serial") != keys.WechatPlatformKeyID {
		t.Errorf("headers %v", r.Header)
	}

	f.answer = answer{status: 204}
	if err := c.CloseOrder(context.Background(), recon.Order{OrderNo: "W-5"}); err != nil {
		t.Fatal(err)
	}
	r = f.request
	if r.Method != http.MethodPost || r.RequestURI != "/v3/pay/transactions/out-trade-no/W-5/close" ||
		string(f.body) != `{"mchid":"`+testMch+`"}` || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("close request %s %s %s %v", r.Method, r.RequestURI, f.body, r.Header)
	}
	if _, err := wechatpay.VerifyRequest(&keys.WechatMerchantKey.PublicKey, r.Header.Get("Authorization"), r.Method, r.RequestURI, f.body, now); err != nil {
		t.Errorf("close authorization: %v", err)
	}
}

func TestCloseOrder(t *testing.T) {
	f, c := newFake(t)
	for _, tc := range []struct {
		name  string
		a     answer
		class channel.Class // ClassTransient with ok: no error
		ok    bool
		is    error
	}{
		{"204", answer{status: 204}, 0, true, nil},
		{"already closed", answer{status: 400, body: `{"code":"ORDER_CLOSED","message":"订单已关闭"}`}, 0, true, nil},
		{"already closed, unsigned", answer{status: 400, body: `{"code":"ORDER_CLOSED"}`, unsigned: true}, channel.ClassPermanent, false, channel.ErrBadSignature},
		{"204 unsigned", answer{status: 204, unsigned: true}, channel.ClassPermanent, false, channel.ErrBadSignature},
		{"204 forged", answer{status: 204, key: f.keys.WechatMerchantKey}, channel.ClassPermanent, false, channel.ErrBadSignature},
		{"paid", answer{status: 400, body: `{"code":"ORDERPAID","message":"订单已支付"}`}, channel.ClassPermanent, false, nil},
		{"unknown", answer{status: 404, body: `{"code":"ORDER_NOT_EXIST"}`}, channel.ClassPermanent, false, nil},
		{"rate limited", answer{status: 429, body: `{"code":"FREQUENCY_LIMITED"}`, header: http.Header{"Retry-After": {"1"}}}, channel.ClassRateLimited, false, nil},
		{"system error", answer{status: 500, body: `{"code":"SYSTEM_ERROR"}`}, channel.ClassTransient, false, nil},
	} {
		f.answer = tc.a
		err := c.CloseOrder(context.Background(), recon.Order{OrderNo: "W-6"})
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.ok:
		case err == nil:
			t.Errorf("%s: closed, want a %s error", tc.name, tc.class)
		case channel.ClassOf(err) != tc.class || (tc.is != nil && !errors.Is(err, tc.is)):
			t.Errorf("%s: %s error %v, want %s wrapping %v", tc.name, channel.ClassOf(err), err, tc.class, tc.is)
		}
	}
}

func TestNetworkFailures(t *testing.T) {
	keys := testKeys(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	c, err := wechatpay.New(testConfig(keys, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(context.Background(), recon.Order{OrderNo: "N-1"}); channel.ClassOf(err) != channel.ClassTransient {
		t.Errorf("refused connection: %v, want transient", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Lookup(ctx, recon.Order{OrderNo: "N-1"}); !errors.Is(err, context.Canceled) || channel.ClassOf(err) != channel.ClassPermanent {
		t.Errorf("cancelled by the caller: %v, want context.Canceled", err)
	}
	if _, err := c.Lookup(context.Background(), recon.Order{}); channel.ClassOf(err) != channel.ClassPermanent {
		t.Errorf("no order number: %v", err)
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	keys := testKeys(t)
	small, err := rsa.GenerateKey(strings.NewReader(strings.Repeat("seed", 1<<12)), 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		edit func(*wechatpay.Config)
	}{
		{"base_url", func(c *wechatpay.Config) { c.BaseURL = "api.mch.weixin.qq.com" }},
		{"base_url", func(c *wechatpay.Config) { c.BaseURL = "ftp://x" }},
		{"mch_id", func(c *wechatpay.Config) { c.MchID = " " }},
		{"cert_serial", func(c *wechatpay.Config) { c.CertSerial = "" }},
		{"private_key_file", func(c *wechatpay.Config) { c.PrivateKey = nil }},
		{"private_key_file", func(c *wechatpay.Config) { c.PrivateKey = small }},
		{"public_key_file", func(c *wechatpay.Config) { c.PublicKey = nil }},
		{"public_key_file", func(c *wechatpay.Config) { c.PublicKey = &small.PublicKey }},
		{"public_key_id", func(c *wechatpay.Config) { c.PublicKeyID = "" }},
		{"timeout", func(c *wechatpay.Config) { c.Timeout = -time.Second }},
	} {
		cfg := testConfig(keys, "")
		tc.edit(&cfg)
		if _, err := wechatpay.New(cfg); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: %v", tc.key, err)
		}
	}
	if _, err := wechatpay.New(testConfig(keys, "")); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
