package alipay_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/simulator"
)

const appID = simulator.TestAlipayAppID

var order = recon.Order{OrderNo: "ORD-7", Amount: 8888, Currency: "CNY", Status: recon.StatusPending}

func keys(t testing.TB) simulator.Keys {
	t.Helper()
	k, err := simulator.TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// reply is one canned gateway answer.
type reply struct {
	status int
	header map[string]string
	body   string
}

// signed renders {"<method>_response":node,"sign":...} signed with key.
func signed(t testing.TB, key *rsa.PrivateKey, method, node string) string {
	t.Helper()
	sig, err := alipay.Sign(key, []byte(node))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{%q:%s,"sign":%q}`, alipay.ResponseNode(method), node, sig)
}

// gateway serves r and hands every request's form to seen, if set.
func gateway(t testing.TB, r reply, seen func(*http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := req.ParseForm(); err != nil {
			t.Errorf("parse request: %v", err)
		}
		if seen != nil {
			seen(req)
		}
		for k, v := range r.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(r.status)
		_, _ = w.Write([]byte(r.body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/gateway.do"
}

func newClient(t testing.TB, baseURL string, mod ...func(*alipay.Config)) *alipay.Client {
	t.Helper()
	k := keys(t)
	cfg := alipay.Config{Name: "ali", BaseURL: baseURL, AppID: appID, PrivateKey: k.AlipayAppKey,
		AlipayPublicKey: &k.AlipayKey.PublicKey, Timeout: 5 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := alipay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func lookup(t testing.TB, r reply, mod ...func(*alipay.Config)) (recon.LookupResult, error) {
	t.Helper()
	return newClient(t, gateway(t, r, nil), mod...).Lookup(context.Background(), order)
}

// ok is a signed 200 answer to the query with node.
func ok(t testing.TB, node string) reply {
	return reply{status: 200, body: signed(t, keys(t).AlipayKey, alipay.MethodQuery, node)}
}

func utc(s string) *time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &tm
}

func sameResult(a, b recon.LookupResult) bool {
	if (a.PaidAt == nil) != (b.PaidAt == nil) || (a.PaidAt != nil && !a.PaidAt.Equal(*b.PaidAt)) {
		return false
	}
	a.PaidAt, b.PaidAt = nil, nil
	return a == b
}

func TestLookupAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		node string
		want recon.LookupResult
	}{
		{"paid", `{"code":"10000","msg":"Success","trade_no":"2024T1","out_trade_no":"ORD-7","trade_status":"TRADE_SUCCESS","total_amount":"88.88","send_pay_date":"2024-03-01 20:00:05"}`,
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 8888, Currency: "CNY", TxnID: "2024T1", PaidAt: utc("2024-03-01T12:00:05Z")}},
		{"finished", `{"code":"10000","msg":"Success","trade_no":"2024T1","out_trade_no":"ORD-7","trade_status":"TRADE_FINISHED","total_amount":"0.01"}`,
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 1, Currency: "CNY", TxnID: "2024T1"}},
		{"amount as number", `{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","trade_status":"TRADE_SUCCESS","total_amount":100000000.00}`,
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 10000000000, Currency: "CNY", TxnID: "T"}},
		{"one decimal", `{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","trade_status":"TRADE_SUCCESS","total_amount":"9.9"}`,
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 990, Currency: "CNY", TxnID: "T"}},
		{"whole yuan", `{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","trade_status":"TRADE_SUCCESS","total_amount":"12"}`,
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 1200, Currency: "CNY", TxnID: "T"}},
		{"trans_currency", `{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","trade_status":"TRADE_SUCCESS","total_amount":"12.34","trans_currency":"usd"}`,
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 1234, Currency: "USD", TxnID: "T"}},
		{"yen", `{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","trade_status":"TRADE_SUCCESS","total_amount":"500","trans_currency":"JPY"}`,
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 500, Currency: "JPY", TxnID: "T"}},
		{"pending", `{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","trade_status":"WAIT_BUYER_PAY","total_amount":"88.88"}`,
			recon.LookupResult{Status: recon.ChannelPending, Amount: 8888, Currency: "CNY", TxnID: "T"}},
		{"pending without amount", `{"code":"10000","msg":"Success","out_trade_no":"ORD-7","trade_status":"WAIT_BUYER_PAY"}`,
			recon.LookupResult{Status: recon.ChannelPending}},
		{"closed", `{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","trade_status":"TRADE_CLOSED","total_amount":"88.88"}`,
			recon.LookupResult{Status: recon.ChannelClosed, Amount: 8888, Currency: "CNY", TxnID: "T"}},
		{"not found", `{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}`,
			recon.LookupResult{Status: recon.ChannelNotFound}},
		{"raw node with spaces and escapes", "{ \"code\" : \"10000\",\n \"msg\":\"Success\", \"trade_no\":\"T\\/1\", \"out_trade_no\":\"ORD-7\", \"trade_status\":\"TRADE_SUCCESS\", \"total_amount\":\"1.00\", \"store_name\":\"\\u8bc1\\u5927\" }",
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: "T/1"}},
		{"unknown fields", `{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","trade_status":"TRADE_SUCCESS","total_amount":"1.00","fund_bill_list":[{"amount":1}],"new_field":{"a":[1,2]}}`,
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: "T"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := lookup(t, ok(t, tc.node))
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if !sameResult(got, tc.want) {
				t.Errorf("Lookup = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLookupErrors(t *testing.T) {
	t.Parallel()
	k := keys(t)
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	paid := `{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","trade_status":"TRADE_SUCCESS","total_amount":"88.88"}`
	goodSig, _ := alipay.Sign(k.AlipayKey, []byte(paid))
	forgedSig, _ := alipay.Sign(k.AlipayAppKey, []byte(paid))
	node := alipay.ResponseNode(alipay.MethodQuery)
	for _, tc := range []struct {
		name     string
		r        reply
		class    channel.Class
		is       error
		after    time.Duration
		mentions []string
	}{
		{name: "429 seconds", r: reply{status: 429, header: map[string]string{"Retry-After": "30"}, body: "slow down"},
			class: channel.ClassRateLimited, after: 30 * time.Second},
		{name: "429 date", r: reply{status: 429, header: map[string]string{"Retry-After": "Fri, 01 Mar 2024 12:02:00 GMT"}},
			class: channel.ClassRateLimited, after: 2 * time.Minute},
		{name: "500", r: reply{status: 500, body: "oops"}, class: channel.ClassTransient, mentions: []string{"500", "oops"}},
		{name: "502 html", r: reply{status: 502, body: "<html>bad gateway</html>"}, class: channel.ClassTransient, mentions: []string{"502", "bad gateway"}},
		{name: "400", r: reply{status: 400, body: "bad"}, class: channel.ClassPermanent, mentions: []string{"400"}},
		{name: "302 not followed", r: reply{status: 302, header: map[string]string{"Location": "/elsewhere"}}, class: channel.ClassPermanent},
		{name: "system busy 20000", r: ok(t, `{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error","sub_msg":"系统繁忙"}`),
			class: channel.ClassTransient, mentions: []string{"20000", "isp.unknow-error", "系统繁忙"}},
		{name: "ACQ.SYSTEM_ERROR", r: ok(t, `{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SYSTEM_ERROR","sub_msg":"系统错误"}`),
			class: channel.ClassTransient, mentions: []string{"ACQ.SYSTEM_ERROR"}},
		{name: "invalid parameter", r: ok(t, `{"code":"40004","msg":"Business Failed","sub_code":"ACQ.INVALID_PARAMETER","sub_msg":"参数无效"}`),
			class: channel.ClassPermanent, mentions: []string{"40004", "ACQ.INVALID_PARAMETER", "参数无效"}},
		{name: "isv permissions", r: ok(t, `{"code":"40006","msg":"Insufficient Permissions","sub_code":"isv.insufficient-isv-permissions","sub_msg":"ISV权限不足"}`),
			class: channel.ClassPermanent, mentions: []string{"40006", "isv.insufficient-isv-permissions"}},
		{name: "auth token", r: ok(t, `{"code":"20001","msg":"Insufficient Token Permissions","sub_code":"aop.invalid-auth-token","sub_msg":"无效的访问令牌"}`),
			class: channel.ClassPermanent, mentions: []string{"20001"}},
		{name: "unsigned isv.invalid-signature", r: reply{status: 200, body: `{"` + node + `":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature","sub_msg":"验签出错"}}`},
			class: channel.ClassPermanent, mentions: []string{"isv.invalid-signature", "unsigned"}},
		{name: "unsigned error_response", r: reply{status: 200, body: `{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}}`},
			class: channel.ClassPermanent, mentions: []string{"isv.invalid-app-id"}},
		{name: "unsigned system busy", r: reply{status: 200, body: `{"` + node + `":{"code":"20000","msg":"Service Currently Unavailable"}}`},
			class: channel.ClassTransient, mentions: []string{"20000", "unsigned"}},
		{name: "unsigned success", r: reply{status: 200, body: `{"` + node + `":` + paid + `}`},
			class: channel.ClassPermanent, is: channel.ErrBadSignature},
		{name: "unsigned not found", r: reply{status: 200, body: `{"` + node + `":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST"}}`},
			class: channel.ClassPermanent, is: channel.ErrBadSignature},
		{name: "null sign", r: reply{status: 200, body: `{"` + node + `":` + paid + `,"sign":null}`},
			class: channel.ClassPermanent, is: channel.ErrBadSignature},
		{name: "forged signature", r: reply{status: 200, body: `{"` + node + `":` + paid + `,"sign":"` + forgedSig + `"}`},
			class: channel.ClassPermanent, is: channel.ErrBadSignature},
		{name: "signature of a re-encoded node", r: reply{status: 200, body: `{"` + node + `":` + strings.ReplaceAll(paid, ",", ", ") + `,"sign":"` + goodSig + `"}`},
			class: channel.ClassPermanent, is: channel.ErrBadSignature},
		{name: "tampered amount", r: reply{status: 200, body: `{"` + node + `":` + strings.Replace(paid, "88.88", "88.89", 1) + `,"sign":"` + goodSig + `"}`},
			class: channel.ClassPermanent, is: channel.ErrBadSignature},
		{name: "sign not base64", r: reply{status: 200, body: `{"` + node + `":` + paid + `,"sign":"%%%"}`},
			class: channel.ClassPermanent, is: channel.ErrBadSignature},
		{name: "sign not a string", r: reply{status: 200, body: `{"` + node + `":` + paid + `,"sign":1}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "not json", r: reply{status: 200, body: "<html>gateway</html>"},
			class: channel.ClassPermanent, is: channel.ErrMalformed, mentions: []string{"<html>gateway</html>"}},
		{name: "empty body", r: reply{status: 200}, class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "other method's node", r: reply{status: 200, body: signed(t, k.AlipayKey, alipay.MethodClose, `{"code":"10000","msg":"Success"}`)},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "node not an object", r: reply{status: 200, body: `{"` + node + `":"x","sign":"` + goodSig + `"}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "code as number", r: ok(t, `{"code":10000,"msg":"Success","out_trade_no":"ORD-7","trade_status":"WAIT_BUYER_PAY"}`),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "no code", r: ok(t, `{"msg":"Success","out_trade_no":"ORD-7","trade_status":"WAIT_BUYER_PAY"}`),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "other order", r: ok(t, strings.Replace(paid, "ORD-7", "ORD-8", 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed, mentions: []string{"ORD-8"}},
		{name: "no out_trade_no", r: ok(t, strings.Replace(paid, `"out_trade_no":"ORD-7",`, "", 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "unknown status", r: ok(t, strings.Replace(paid, "TRADE_SUCCESS", "TRADE_REFUNDED", 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed, mentions: []string{"TRADE_REFUNDED"}},
		{name: "no status", r: ok(t, strings.Replace(paid, `"trade_status":"TRADE_SUCCESS",`, "", 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "paid without amount", r: ok(t, strings.Replace(paid, `,"total_amount":"88.88"`, "", 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "paid without trade_no", r: ok(t, strings.Replace(paid, `"trade_no":"T",`, "", 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "three decimals", r: ok(t, strings.Replace(paid, "88.88", "88.888", 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed, mentions: []string{"88.888"}},
		{name: "yen with decimals", r: ok(t, strings.Replace(paid, `"88.88"`, `"500.5","trans_currency":"JPY"`, 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "negative amount", r: ok(t, strings.Replace(paid, "88.88", "-88.88", 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "exponent amount", r: ok(t, strings.Replace(paid, `"88.88"`, `8.888e1`, 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "amount object", r: ok(t, strings.Replace(paid, `"88.88"`, `{"v":1}`, 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "huge amount", r: ok(t, strings.Replace(paid, "88.88", "99999999999999999999.99", 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "bad trans_currency", r: ok(t, strings.Replace(paid, `"88.88"`, `"88.88","trans_currency":"U$"`, 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "bad send_pay_date", r: ok(t, strings.Replace(paid, `"88.88"`, `"88.88","send_pay_date":"yesterday"`, 1)),
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "body too large", r: reply{status: 200, body: `{"x":"` + strings.Repeat("x", alipay.MaxBodyBytes) + `"}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := lookup(t, tc.r, func(c *alipay.Config) { c.Now = func() time.Time { return now } })
			if err == nil {
				t.Fatal("Lookup succeeded, want an error")
			}
			if got := channel.ClassOf(err); got != tc.class {
				t.Errorf("ClassOf(%v) = %s, want %s", err, got, tc.class)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if tc.class == channel.ClassRateLimited {
				if got := channel.RetryAfterOf(err); got != tc.after {
					t.Errorf("RetryAfter = %s, want %s", got, tc.after)
				}
			}
			msg := err.Error()
			for _, m := range append(tc.mentions, "ORD-7", "ali") {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not mention %q", msg, m)
				}
			}
			for _, secret := range []string{goodSig, forgedSig, goodSig[:40], forgedSig[:40]} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q quotes a signature", msg)
				}
			}
			if len(msg) > 1000 {
				t.Errorf("error is %d bytes long; the body must be truncated", len(msg))
			}
		})
	}
}

func TestLookupQuotesBodyWithoutSignature(t *testing.T) {
	t.Parallel()
	k := keys(t)
	body := signed(t, k.AlipayKey, alipay.MethodQuery, `{"code":"10000","out_trade_no":"ORD-7","trade_status":"TRADE_SUCCESS","total_amount":"1.0.0","trade_no":"T"}`)
	_, err := lookup(t, reply{status: 200, body: body})
	if !errors.Is(err, channel.ErrMalformed) || !strings.Contains(err.Error(), "1.0.0") {
		t.Fatalf("Lookup error = %v, want malformed quoting the amount", err)
	}
	var sig string
	var top map[string]json.RawMessage
	_ = json.Unmarshal([]byte(body), &top)
	_ = json.Unmarshal(top["sign"], &sig)
	if strings.Contains(err.Error(), sig[:20]) {
		t.Errorf("error %q quotes the signature", err)
	}
	// A body that is not even JSON still has its sign blanked.
	_, err = lookup(t, reply{status: 200, body: `{"sign":"` + sig + `", broken`})
	if !errors.Is(err, channel.ErrMalformed) || strings.Contains(err.Error(), sig[:20]) {
		t.Errorf("Lookup error = %v, want malformed without the signature", err)
	}
}

func TestLookupRequest(t *testing.T) {
	t.Parallel()
	k := keys(t)
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	var got *http.Request
	u := gateway(t, ok(t, `{"code":"10000","msg":"Success","out_trade_no":"ORD-7","trade_status":"WAIT_BUYER_PAY"}`), func(r *http.Request) { got = r })
	c := newClient(t, u, func(c *alipay.Config) { c.Now = func() time.Time { return now } })
	if _, err := c.Lookup(context.Background(), order); err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/gateway.do" {
		t.Errorf("request %s %s, want POST /gateway.do", got.Method, got.URL.Path)
	}
	if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		t.Errorf("Content-Type %q", ct)
	}
	want := map[string]string{
		"app_id": appID, "method": "alipay.trade.query", "format": "JSON", "charset": "utf-8",
		"sign_type": "RSA2", "timestamp": "2024-03-01 20:00:00", "version": "1.0",
		"biz_content": `{"out_trade_no":"ORD-7"}`,
	}
	for k, v := range want {
		if g := got.PostForm.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if err := alipay.Verify(&k.AlipayAppKey.PublicKey, alipay.SignContent(got.PostForm), got.PostForm.Get("sign")); err != nil {
		t.Errorf("request signature: %v", err)
	}
}

func TestCloseOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		node  string
		class channel.Class // when an error is wanted
		is    error
	}{
		{name: "closed", node: `{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7"}`},
		{name: "closed without ids", node: `{"code":"10000","msg":"Success"}`},
		{name: "already paid", node: `{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_STATUS_ERROR","sub_msg":"交易状态不合法"}`, class: channel.ClassPermanent},
		{name: "not exist", node: `{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}`, class: channel.ClassPermanent},
		{name: "system error", node: `{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SYSTEM_ERROR","sub_msg":"系统错误"}`, class: channel.ClassTransient},
		{name: "other order", node: `{"code":"10000","msg":"Success","out_trade_no":"ORD-8"}`, class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "garbage node", node: `{"code":[]}`, class: channel.ClassPermanent, is: channel.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var method string
			r := reply{status: 200, body: signed(t, keys(t).AlipayKey, alipay.MethodClose, tc.node)}
			c := newClient(t, gateway(t, r, func(r *http.Request) { method = r.PostForm.Get("method") }))
			err := c.CloseOrder(context.Background(), order)
			if method != alipay.MethodClose {
				t.Errorf("method %q, want %s", method, alipay.MethodClose)
			}
			if tc.name == "closed" || tc.name == "closed without ids" {
				if err != nil {
					t.Fatalf("CloseOrder: %v", err)
				}
				return
			}
			if err == nil || channel.ClassOf(err) != tc.class {
				t.Fatalf("CloseOrder = %v, want a %s error", err, tc.class)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), "close ORD-7") {
				t.Errorf("error %q does not name the operation", err)
			}
		})
	}
}

func TestNetworkErrors(t *testing.T) {
	t.Parallel()
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL
		srv.Close()
		_, err := newClient(t, u).Lookup(context.Background(), order)
		if err == nil || channel.ClassOf(err) != channel.ClassTransient {
			t.Errorf("Lookup error = %v, want transient", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body) // the server notices a gone client only once the body is read
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		c := newClient(t, srv.URL, func(c *alipay.Config) { c.Timeout = 20 * time.Millisecond })
		_, err := c.Lookup(context.Background(), order)
		if err == nil || channel.ClassOf(err) != channel.ClassTransient || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lookup error = %v, want a transient deadline", err)
		}
		if err := c.CloseOrder(context.Background(), order); err == nil || channel.ClassOf(err) != channel.ClassTransient {
			t.Errorf("CloseOrder error = %v, want transient", err)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			cancel()
			<-r.Context().Done()
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL).Lookup(ctx, order)
		if !errors.Is(err, context.Canceled) || channel.ClassOf(err) != channel.ClassPermanent {
			t.Errorf("Lookup error = %v, want context.Canceled, not retried", err)
		}
	})
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	k := keys(t)
	good := alipay.Config{AppID: appID, PrivateKey: k.AlipayAppKey, AlipayPublicKey: &k.AlipayKey.PublicKey}
	for _, tc := range []struct {
		name string
		mod  func(*alipay.Config)
		want string
	}{
		{"relative base_url", func(c *alipay.Config) { c.BaseURL = "/gateway.do" }, "base_url"},
		{"ftp base_url", func(c *alipay.Config) { c.BaseURL = "ftp://example.com/gateway.do" }, "base_url"},
		{"no host", func(c *alipay.Config) { c.BaseURL = "https://" }, "base_url"},
		{"unparseable", func(c *alipay.Config) { c.BaseURL = "http://[::1" }, "base_url"},
		{"app_id", func(c *alipay.Config) { c.AppID = " " }, "app_id"},
		{"private key", func(c *alipay.Config) { c.PrivateKey = nil }, "private_key_file"},
		{"public key", func(c *alipay.Config) { c.AlipayPublicKey = nil }, "public_key_file"},
		{"timeout", func(c *alipay.Config) { c.Timeout = -time.Second }, "timeout"},
	} {
		cfg := good
		tc.mod(&cfg)
		if _, err := alipay.New(cfg); err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
			t.Errorf("%s: New error = %v, want one starting with %s:", tc.name, err, tc.want)
		}
	}
	cfg := good
	cfg.BaseURL = "ftp://user:hunter2@example.com"
	if _, err := alipay.New(cfg); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New error = %v, want one without the password", err)
	}
	if _, err := alipay.New(good); err != nil {
		t.Errorf("New(defaults) = %v", err)
	}
}

func TestRequestSignContent(t *testing.T) {
	t.Parallel()
	v := url.Values{"b": {"2"}, "a": {"1"}, "sign": {"x"}, "empty": {""}, "c": {"x=y&z"}}
	if got, want := string(alipay.SignContent(v)), "a=1&b=2&c=x=y&z"; got != want {
		t.Errorf("SignContent = %q, want %q", got, want)
	}
	k := keys(t)
	sig, err := alipay.Sign(k.AlipayAppKey, []byte("content"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sig)
	if len(raw) != 256 {
		t.Errorf("signature is %d bytes, want 256 (RSA 2048)", len(raw))
	}
	if err := alipay.Verify(&k.AlipayAppKey.PublicKey, []byte("content"), " "+sig+"\n"); err != nil {
		t.Errorf("Verify(padded) = %v", err)
	}
	for name, s := range map[string]string{"empty": "", "other key": mustSign(t, k.AlipayKey, "content"),
		"other content": mustSign(t, k.AlipayAppKey, "content2"), "not base64": "***", "truncated": sig[:100]} {
		err := alipay.Verify(&k.AlipayAppKey.PublicKey, []byte("content"), s)
		if !errors.Is(err, channel.ErrBadSignature) {
			t.Errorf("Verify(%s) = %v, want ErrBadSignature", name, err)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("Verify(%s) error %q quotes the signature", name, err)
		}
	}
}

func mustSign(t testing.TB, key *rsa.PrivateKey, content string) string {
	t.Helper()
	s, err := alipay.Sign(key, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAmounts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, cur string
		want    int64
	}{
		{"88.88", "CNY", 8888}, {"0.01", "CNY", 1}, {"0", "CNY", 0}, {"0.00", "CNY", 0}, {"100000000", "CNY", 10000000000},
		{"9.9", "CNY", 990}, {"007.50", "CNY", 750}, {"500", "JPY", 500}, {"1.234", "KWD", 1234}, {"1.2", "KWD", 1200},
		{"123456789012.34", "CNY", 12345678901234},
		// Zeros past the currency's decimals change nothing.
		{"500.00", "JPY", 500}, {"1.0", "JPY", 1}, {"88.880", "CNY", 8888}, {"1.2340", "KWD", 1234},
	} {
		got, err := alipay.ParseAmount(tc.in, tc.cur)
		if err != nil || got != tc.want {
			t.Errorf("ParseAmount(%q, %s) = %d, %v, want %d", tc.in, tc.cur, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, cur string }{
		{"", "CNY"}, {".5", "CNY"}, {"5.", "CNY"}, {"-1", "CNY"}, {"+1", "CNY"}, {"1e2", "CNY"}, {"1.001", "CNY"},
		{"1,000.00", "CNY"}, {" 1", "CNY"}, {"1.5", "JPY"}, {"500.01", "JPY"}, {"1.2345", "KWD"}, {"NaN", "CNY"}, {"0x10", "CNY"},
		{"1234567890123456", "CNY"}, {"1.2.3", "CNY"}, {"١٢", "CNY"},
	} {
		if got, err := alipay.ParseAmount(tc.in, tc.cur); !errors.Is(err, alipay.ErrAmount) {
			t.Errorf("ParseAmount(%q, %s) = %d, %v, want ErrAmount", tc.in, tc.cur, got, err)
		}
	}
	for _, tc := range []struct {
		minor int64
		cur   string
		want  string
	}{{8888, "CNY", "88.88"}, {1, "CNY", "0.01"}, {0, "CNY", "0.00"}, {12345, "USD", "123.45"}, {500, "JPY", "500"}, {1234, "KWD", "1.234"}, {5, "KWD", "0.005"}} {
		if got := alipay.FormatAmount(tc.minor, tc.cur); got != tc.want {
			t.Errorf("FormatAmount(%d, %s) = %q, want %q", tc.minor, tc.cur, got, tc.want)
		}
	}
}
