package simulator

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/wechatpay"
)

// wxEnv is the simulator server with WeChat Pay's side of the keys.
type wxEnv struct {
	t        *testing.T
	sim      *Sim
	keys     Keys
	orders   *Orders
	url      string
	verifier wechatpay.Verifier
}

func newWxEnv(t *testing.T) *wxEnv {
	t.Helper()
	keys, err := TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	e := &wxEnv{t: t, sim: New(Config{Seed: 1, RetryAfter: 2 * time.Second}), keys: keys, orders: NewOrders()}
	srv := httptest.NewServer(e.sim.Server(e.orders, keys))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.verifier = wechatpay.Verifier{KeyID: keys.WechatPlatformKeyID, Key: &keys.WechatPlatformKey.PublicKey}
	return e
}

// add registers an order numbered no with behaviour b.
func (e *wxEnv) add(no string, b Behaviour) recon.Order {
	o := order(no)
	e.orders.Add(o)
	e.sim.Set(no, b)
	return o
}

// wxAuth says how a test request is signed; the zero value signs it as the
// merchant, now, for the URI sent.
type wxAuth struct {
	none      bool
	key       *rsa.PrivateKey
	mchID     string
	serial    string
	age       time.Duration
	signedURI string
	// signedBody, when set, is signed instead of the body sent.
	signedBody string
}

// wxReply is a response read whole.
type wxReply struct {
	status int
	header http.Header
	body   []byte
}

func (e *wxEnv) do(method, uri string, body []byte, a wxAuth) wxReply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+uri, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if !a.none {
		key, mch, serial, signed := e.keys.WechatMerchantKey, e.keys.WechatMchID, e.keys.WechatMerchantSerial, uri
		if a.key != nil {
			key = a.key
		}
		if a.mchID != "" {
			mch = a.mchID
		}
		if a.serial != "" {
			serial = a.serial
		}
		if a.signedURI != "" {
			signed = a.signedURI
		}
		signedBody := body
		if a.signedBody != "" {
			signedBody = []byte(a.signedBody)
		}
		auth, err := wechatpay.SignRequest(key, mch, serial, method, signed, signedBody, time.Now().Add(-a.age).Unix(), wechatpay.NewNonce())
		if err != nil {
			e.t.Fatal(err)
		}
		req.Header.Set("Authorization", auth.String())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return wxReply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *wxEnv) query(no string) wxReply {
	e.t.Helper()
	return e.do(http.MethodGet, wechatpay.TransactionsPath+no+"?mchid="+e.keys.WechatMchID, nil, wxAuth{})
}

func (e *wxEnv) close(no string) wxReply {
	e.t.Helper()
	return e.do(http.MethodPost, wechatpay.TransactionsPath+no+"/close", []byte(`{"mchid":"`+e.keys.WechatMchID+`"}`), wxAuth{})
}

// mustError checks that r is a signed error answer with status and code.
func (e *wxEnv) mustError(r wxReply, status int, code string) {
	e.t.Helper()
	if err := e.verifier.Verify(r.header, r.body); err != nil {
		e.t.Errorf("error answer not signed: %v", err)
	}
	ae, err := wechatpay.ParseAPIError(r.body)
	if r.status != status || err != nil || ae.Code != code {
		e.t.Fatalf("HTTP %d %s (%v), want %d %s", r.status, r.body, err, status, code)
	}
}

func TestWechatPayQueryAnswers(t *testing.T) {
	t.Parallel()
	e := newWxEnv(t)
	for _, tc := range []struct {
		name  string
		b     Behaviour
		state string // trade_state of a 200
	}{
		{"paid", Behaviour{Status: recon.ChannelPaid}, "SUCCESS"},
		{"pending", Behaviour{Status: recon.ChannelPending}, "NOTPAY"},
		{"closed", Behaviour{Status: recon.ChannelClosed}, "CLOSED"},
		{"failed", Behaviour{Status: recon.ChannelFailed}, "PAYERROR"},
	} {
		r := e.query(e.add("WQ-"+tc.name, tc.b).OrderNo)
		if err := e.verifier.Verify(r.header, r.body); err != nil || r.status != http.StatusOK {
			t.Fatalf("%s: HTTP %d, verify %v", tc.name, r.status, err)
		}
		var tx wechatpay.Transaction
		if err := json.Unmarshal(r.body, &tx); err != nil || tx.TradeState != tc.state || tx.OutTradeNo != "WQ-"+tc.name ||
			tx.MchID != e.keys.WechatMchID || tx.Amount == nil || tx.Amount.Total == nil || *tx.Amount.Total != 1000 {
			t.Fatalf("%s: body %s (%v)", tc.name, r.body, err)
		}
		paid := tc.state == "SUCCESS"
		// Like the real API, only a paid answer has currency, transaction id
		// and success time; unpaid ones have payer_currency alone.
		if got := tx.Amount.Currency != "" && tx.TransactionID != "" && tx.SuccessTime != ""; got != paid {
			t.Errorf("%s: currency/transaction_id/success_time present = %v: %s", tc.name, got, r.body)
		}
		if tx.Amount.PayerCurrency != "CNY" {
			t.Errorf("%s: payer_currency %q", tc.name, tx.Amount.PayerCurrency)
		}
		if paid && !strings.HasSuffix(tx.SuccessTime, "+08:00") {
			t.Errorf("success_time %q is not in China time", tx.SuccessTime)
		}
	}

	e.mustError(e.query(e.add("WQ-unknown", Behaviour{Status: recon.ChannelNotFound}).OrderNo), http.StatusNotFound, wechatpay.CodeOrderNotExist)
	e.mustError(e.query("WQ-not-in-source"), http.StatusNotFound, wechatpay.CodeOrderNotExist)
	e.mustError(e.query(e.add("WQ-500", Behaviour{Status: recon.ChannelPaid, TransientFailures: 1}).OrderNo), http.StatusInternalServerError, wechatpay.CodeSystemError)
	e.mustError(e.query(e.add("WQ-400", Behaviour{PermanentError: true}).OrderNo), http.StatusBadRequest, "INVALID_REQUEST")
	r := e.query(e.add("WQ-429", Behaviour{Status: recon.ChannelPaid, RateLimits: 1}).OrderNo)
	e.mustError(r, http.StatusTooManyRequests, wechatpay.CodeFrequencyLimited)
	if ra := r.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2", ra)
	}
	r = e.query(e.add("WQ-malformed", Behaviour{Status: recon.ChannelPaid, Malformed: true}).OrderNo)
	if err := e.verifier.Verify(r.header, r.body); err != nil || r.status != http.StatusOK || json.Valid(r.body) {
		t.Errorf("malformed: HTTP %d %s, verify %v; want a signed, unparseable 200", r.status, r.body, err)
	}
}

func TestWechatPaySignatureFaults(t *testing.T) {
	t.Parallel()
	e := newWxEnv(t)
	r := e.query(e.add("WS-bad", Behaviour{Status: recon.ChannelPaid, BadSignature: true}).OrderNo)
	if err := e.verifier.Verify(r.header, r.body); !errors.Is(err, channel.ErrBadSignature) || r.status != http.StatusOK {
		t.Errorf("bad signature: HTTP %d, verify %v", r.status, err)
	}
	r = e.query(e.add("WS-stale", Behaviour{Status: recon.ChannelPaid, StaleTimestamp: true}).OrderNo)
	if err := e.verifier.Verify(r.header, r.body); !errors.Is(err, channel.ErrBadSignature) || !strings.Contains(err.Error(), "stale") {
		t.Errorf("stale timestamp: verify %v, want a stale-timestamp error", err)
	}
	// The stale answer is otherwise genuine: an hour ago it verified.
	past := e.verifier
	past.Now = func() time.Time { return time.Now().Add(-wechatStaleBy) }
	if err := past.Verify(r.header, r.body); err != nil {
		t.Errorf("stale answer at its own time: %v", err)
	}
}

func TestWechatPayRefusesBadAuthorization(t *testing.T) {
	t.Parallel()
	e := newWxEnv(t)
	o := e.add("WA-1", Behaviour{Status: recon.ChannelPaid})
	uri := wechatpay.TransactionsPath + o.OrderNo + "?mchid=" + e.keys.WechatMchID
	for _, tc := range []struct {
		name string
		a    wxAuth
	}{
		{"no authorization", wxAuth{none: true}},
		{"another key", wxAuth{key: e.keys.WechatPlatformKey}},
		{"another merchant", wxAuth{mchID: "1900000002"}},
		{"another certificate", wxAuth{serial: "0123456789ABCDEF"}},
		{"stale", wxAuth{age: 6 * time.Minute}},
		{"signed for another order", wxAuth{signedURI: wechatpay.TransactionsPath + "WA-2?mchid=" + e.keys.WechatMchID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.mustError(e.do(http.MethodGet, uri, nil, tc.a), http.StatusUnauthorized, wechatpay.CodeSignError)
		})
	}
	if n := e.sim.Calls(o.OrderNo); n != 0 {
		t.Errorf("refused requests reached the channel %d times", n)
	}
	e.t = t
	e.mustError(e.do(http.MethodGet, wechatpay.TransactionsPath+o.OrderNo+"?mchid=1900000002", nil, wxAuth{}), http.StatusBadRequest, "PARAM_ERROR")
}

func TestWechatPayClose(t *testing.T) {
	t.Parallel()
	e := newWxEnv(t)
	o := e.add("WC-pending", Behaviour{Status: recon.ChannelPending})
	r := e.close(o.OrderNo)
	if err := e.verifier.Verify(r.header, r.body); err != nil || r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("close pending: HTTP %d %s, verify %v; want a signed 204", r.status, r.body, err)
	}
	var tx wechatpay.Transaction
	if r := e.query(o.OrderNo); json.Unmarshal(r.body, &tx) != nil || tx.TradeState != "CLOSED" {
		t.Errorf("after close: %s", r.body)
	}
	e.mustError(e.close(e.add("WC-paid", Behaviour{Status: recon.ChannelPaid}).OrderNo), http.StatusBadRequest, wechatpay.CodeOrderPaid)
	e.mustError(e.close(e.add("WC-unknown", Behaviour{Status: recon.ChannelNotFound}).OrderNo), http.StatusNotFound, wechatpay.CodeOrderNotExist)
	e.mustError(e.close("WC-not-in-source"), http.StatusNotFound, wechatpay.CodeOrderNotExist)
	e.mustError(e.close(e.add("WC-refused", Behaviour{PermanentError: true}).OrderNo), http.StatusForbidden, "TRADE_ERROR")
	e.mustError(e.do(http.MethodPost, wechatpay.TransactionsPath+"WC-pending/close", []byte(`{"mchid":"1900000002"}`), wxAuth{}),
		http.StatusBadRequest, "PARAM_ERROR")
	// The body is signed too: one signed over another body is refused.
	e.mustError(e.do(http.MethodPost, wechatpay.TransactionsPath+"WC-pending/close", []byte(`{"mchid":"`+e.keys.WechatMchID+`"}`),
		wxAuth{signedBody: `{"mchid":"1900000002"}`}), http.StatusUnauthorized, wechatpay.CodeSignError)
}
