package httpjson

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

const testSecret = "s3cr3t-key"

var order = recon.Order{ID: 7, OrderNo: "ORD-7", Amount: 100, Currency: "CNY", Status: recon.StatusPending}

// answer is what the fake channel sends back.
type answer struct {
	status int
	body   string
	header map[string]string
	sign   bool // add a valid X-Signature with testSecret
}

// server starts a fake channel answering every request with a, and records
// the last request.
func server(t *testing.T, a answer) (*httptest.Server, *http.Request) {
	t.Helper()
	var last http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last = *r.Clone(context.Background())
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.sign {
			w.Header().Set(SignatureHeader, Sign(testSecret, []byte(a.body)))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv, &last
}

func client(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func lookup(t *testing.T, a answer, cfg Config) (recon.LookupResult, error) {
	t.Helper()
	srv, _ := server(t, a)
	cfg.BaseURL = srv.URL
	return client(t, cfg).Lookup(context.Background(), order)
}

const paidBody = `{"code":"0000","msg":"success","data":{"order":"ORD-7","status":"PAID","amount":100,"currency":"cny","txn_id":"T123","paid_at":"2024-03-01T20:00:00+08:00"}}`

func TestLookupRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		base      string // appended to the server URL
		cfg       Config
		wantPath  string
		wantParam string
	}{
		{"defaults", "", Config{}, "/order/get_result", "orderId"},
		{"base path with slash", "/api/v2/", Config{}, "/api/v2/order/get_result", "orderId"},
		{"custom", "/gw", Config{LookupPath: "/trade/query", OrderParam: "out_trade_no"}, "/gw/trade/query", "out_trade_no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, last := server(t, answer{status: 200, body: paidBody})
			cfg := tc.cfg
			cfg.BaseURL = srv.URL + tc.base
			o := order
			o.OrderNo = "ORD 7&x=1"
			_, _ = client(t, cfg).Lookup(context.Background(), o)
			if last.Method != http.MethodGet {
				t.Errorf("method = %s, want GET", last.Method)
			}
			if last.URL.Path != tc.wantPath {
				t.Errorf("path = %q, want %q", last.URL.Path, tc.wantPath)
			}
			if got := last.URL.Query().Get(tc.wantParam); got != o.OrderNo {
				t.Errorf("query %s = %q, want %q (raw %q)", tc.wantParam, got, o.OrderNo, last.URL.RawQuery)
			}
		})
	}
}

func TestLookupResults(t *testing.T) {
	t.Parallel()
	paidAt := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		a    answer
		cfg  Config
		want recon.LookupResult
	}{
		{"paid", answer{status: 200, body: paidBody},
			Config{}, recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: "T123", PaidAt: &paidAt}},
		{"paid signed", answer{status: 200, body: paidBody, sign: true},
			Config{Secret: testSecret}, recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: "T123", PaidAt: &paidAt}},
		{"pending without amount", answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"PENDING"}}`},
			Config{}, recon.LookupResult{Status: recon.ChannelPending}},
		{"failed", answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"FAILED","amount":100,"currency":"CNY"}}`},
			Config{}, recon.LookupResult{Status: recon.ChannelFailed, Amount: 100, Currency: "CNY"}},
		{"closed", answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"CLOSED"}}`},
			Config{}, recon.LookupResult{Status: recon.ChannelClosed}},
		{"paid zero amount", answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"PAID","amount":0,"currency":"JPY"}}`},
			Config{}, recon.LookupResult{Status: recon.ChannelPaid, Amount: 0, Currency: "JPY"}},
		{"http 404", answer{status: 404, body: `not here`},
			Config{}, recon.LookupResult{Status: recon.ChannelNotFound}},
		{"http 404 signed", answer{status: 404, body: `{"code":"1004","msg":"order not exist"}`, sign: true},
			Config{Secret: testSecret}, recon.LookupResult{Status: recon.ChannelNotFound}},
		{"code 1004", answer{status: 200, body: `{"code":"1004","msg":"order not exist"}`},
			Config{}, recon.LookupResult{Status: recon.ChannelNotFound}},
		{"custom codes and statuses", answer{status: 200, body: `{"code":"SUCCESS","data":{"order":"ORD-7","status":"TRADE_SUCCESS","amount":100,"currency":"CNY"}}`},
			Config{SuccessCode: "SUCCESS", NotFoundCode: "NOT_EXIST", StatusMap: map[string]recon.ChannelStatus{"TRADE_SUCCESS": recon.ChannelPaid, "WAIT_BUYER_PAY": recon.ChannelPending}},
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY"}},
		{"custom not found code", answer{status: 200, body: `{"code":"NOT_EXIST","msg":"no"}`},
			Config{SuccessCode: "SUCCESS", NotFoundCode: "NOT_EXIST"}, recon.LookupResult{Status: recon.ChannelNotFound}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := lookup(t, tc.a, tc.cfg)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if !sameResult(got, tc.want) {
				t.Errorf("Lookup = %s, want %s", show(got), show(tc.want))
			}
		})
	}
}

func sameResult(a, b recon.LookupResult) bool {
	if (a.PaidAt == nil) != (b.PaidAt == nil) || (a.PaidAt != nil && !a.PaidAt.Equal(*b.PaidAt)) {
		return false
	}
	a.PaidAt, b.PaidAt = nil, nil
	return a == b
}

func show(r recon.LookupResult) string {
	s := string(r.Status) + " " + r.Currency + " " + r.TxnID
	if r.PaidAt != nil {
		s += " " + r.PaidAt.Format(time.RFC3339)
	}
	return s
}

func TestLookupErrors(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		a         answer
		cfg       Config
		class     channel.Class
		is        error         // when set, errors.Is must hold
		after     time.Duration // ClassRateLimited
		mentions  []string      // the error text must contain these
		leaksNone bool          // check that neither secret nor signature appear
	}{
		{name: "429 seconds", a: answer{status: 429, body: `slow down`, header: map[string]string{"Retry-After": "30"}},
			class: channel.ClassRateLimited, after: 30 * time.Second},
		{name: "429 date", a: answer{status: 429, header: map[string]string{"Retry-After": "Fri, 01 Mar 2024 12:02:00 GMT"}},
			cfg: Config{Now: func() time.Time { return now }}, class: channel.ClassRateLimited, after: 2 * time.Minute},
		{name: "429 bare", a: answer{status: 429}, class: channel.ClassRateLimited},
		{name: "500", a: answer{status: 500, body: `oops`}, class: channel.ClassTransient, mentions: []string{"500", "oops"}},
		{name: "503", a: answer{status: 503}, class: channel.ClassTransient, mentions: []string{"503"}},
		{name: "400", a: answer{status: 400, body: `bad`}, class: channel.ClassPermanent, mentions: []string{"400"}},
		{name: "401", a: answer{status: 401}, class: channel.ClassPermanent},
		{name: "403", a: answer{status: 403}, class: channel.ClassPermanent},
		{name: "302 not followed", a: answer{status: 302}, class: channel.ClassPermanent},
		{name: "error code", a: answer{status: 200, body: `{"code":"2001","msg":"merchant disabled"}`},
			class: channel.ClassPermanent, mentions: []string{"2001", "merchant disabled", "ORD-7"}},
		{name: "signature missing", a: answer{status: 200, body: paidBody}, cfg: Config{Secret: testSecret},
			class: channel.ClassPermanent, is: channel.ErrBadSignature, leaksNone: true},
		{name: "signature wrong", a: answer{status: 200, body: paidBody, header: map[string]string{SignatureHeader: Sign("other", []byte(paidBody))}},
			cfg: Config{Secret: testSecret}, class: channel.ClassPermanent, is: channel.ErrBadSignature, leaksNone: true},
		{name: "signature of another body", a: answer{status: 200, body: paidBody, header: map[string]string{SignatureHeader: Sign(testSecret, []byte(paidBody+" "))}},
			cfg: Config{Secret: testSecret}, class: channel.ClassPermanent, is: channel.ErrBadSignature, leaksNone: true},
		{name: "signature not hex", a: answer{status: 200, body: paidBody, header: map[string]string{SignatureHeader: "zz-not-hex"}},
			cfg: Config{Secret: testSecret}, class: channel.ClassPermanent, is: channel.ErrBadSignature, leaksNone: true},
		{name: "unsigned 404 with secret", a: answer{status: 404}, cfg: Config{Secret: testSecret},
			class: channel.ClassPermanent, is: channel.ErrBadSignature},
		{name: "unsigned not-found code with secret", a: answer{status: 200, body: `{"code":"1004"}`}, cfg: Config{Secret: testSecret},
			class: channel.ClassPermanent, is: channel.ErrBadSignature},
		{name: "not json", a: answer{status: 200, body: `<html>gateway</html>`},
			class: channel.ClassPermanent, is: channel.ErrMalformed, mentions: []string{"<html>gateway</html>"}},
		{name: "empty body", a: answer{status: 200}, class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "trailing garbage", a: answer{status: 200, body: paidBody + `{}`}, class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "no data", a: answer{status: 200, body: `{"code":"0000"}`}, class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "other order", a: answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-8","status":"PAID","amount":100,"currency":"CNY"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed, mentions: []string{"ORD-8"}},
		{name: "missing order", a: answer{status: 200, body: `{"code":"0000","data":{"status":"PENDING"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "unknown status", a: answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"REFUNDED"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed, mentions: []string{"REFUNDED"}},
		{name: "status outside custom map", a: answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"PAID","amount":1}}`},
			cfg: Config{StatusMap: map[string]recon.ChannelStatus{"SUCCESS": recon.ChannelPaid}}, class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "negative amount", a: answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"PAID","amount":-1,"currency":"CNY"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "fractional amount", a: answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"PAID","amount":1.5,"currency":"CNY"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "amount as string", a: answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"PAID","amount":"100","currency":"CNY"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "paid without amount", a: answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"PAID","currency":"CNY"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "short currency", a: answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"PAID","amount":100,"currency":"CN"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "symbol currency", a: answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"PAID","amount":100,"currency":"U$D"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "bad paid_at", a: answer{status: 200, body: `{"code":"0000","data":{"order":"ORD-7","status":"PAID","amount":100,"currency":"CNY","paid_at":"yesterday"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "code as number", a: answer{status: 200, body: `{"code":0,"data":{"order":"ORD-7","status":"PENDING"}}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
		{name: "body too large", a: answer{status: 200, body: `{"code":"0000","msg":"` + strings.Repeat("x", MaxBodyBytes) + `"}`},
			class: channel.ClassPermanent, is: channel.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := lookup(t, tc.a, tc.cfg)
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
			for _, m := range tc.mentions {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not mention %q", msg, m)
				}
			}
			if !strings.Contains(msg, "ORD-7") {
				t.Errorf("error %q does not name the order", msg)
			}
			if strings.Contains(msg, testSecret) {
				t.Errorf("error %q leaks the secret", msg)
			}
			if sig := tc.a.header[SignatureHeader]; tc.leaksNone && sig != "" && strings.Contains(msg, sig) {
				t.Errorf("error %q leaks the signature", msg)
			}
			if len(msg) > 800 {
				t.Errorf("error is %d bytes long; the body must be truncated", len(msg))
			}
		})
	}
}

func TestLookupQuotesAtMost200BytesOfBody(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("a", 199) + "Z" + "TAIL" + strings.Repeat("b", 5000)
	_, err := lookup(t, answer{status: 200, body: body}, Config{})
	if !errors.Is(err, channel.ErrMalformed) {
		t.Fatalf("Lookup error = %v, want malformed", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "aZ") || strings.Contains(msg, "TAIL") {
		t.Errorf("error %q should quote the first 200 bytes only", msg)
	}
}

func TestLookupNetworkErrors(t *testing.T) {
	t.Parallel()
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := client(t, Config{BaseURL: url}).Lookup(context.Background(), order)
		if err == nil || channel.ClassOf(err) != channel.ClassTransient {
			t.Errorf("Lookup error = %v, want transient", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		_, err := client(t, Config{BaseURL: srv.URL, Timeout: 20 * time.Millisecond}).Lookup(context.Background(), order)
		if err == nil || channel.ClassOf(err) != channel.ClassTransient || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lookup error = %v, want a transient deadline", err)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cancel()
			<-r.Context().Done()
		}))
		defer srv.Close()
		_, err := client(t, Config{BaseURL: srv.URL}).Lookup(ctx, order)
		if !errors.Is(err, context.Canceled) || channel.ClassOf(err) != channel.ClassPermanent {
			t.Errorf("Lookup error = %v, want context.Canceled, not retried", err)
		}
	})
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error
	}{
		{"missing base_url", Config{Name: "acme"}, "base_url"},
		{"relative", Config{BaseURL: "/order"}, "base_url"},
		{"no host", Config{BaseURL: "http://"}, "base_url"},
		{"ftp", Config{BaseURL: "ftp://example.com"}, "base_url"},
		{"unparseable", Config{BaseURL: "http://[::1"}, "base_url"},
		{"negative timeout", Config{BaseURL: "https://pay.example.com", Timeout: -time.Second}, "timeout"},
		{"lookup_path", Config{BaseURL: "https://pay.example.com", LookupPath: "order"}, "lookup_path"},
		{"same codes", Config{BaseURL: "https://pay.example.com", SuccessCode: "1004"}, "not_found_code"},
		{"status_map", Config{BaseURL: "https://pay.example.com", StatusMap: map[string]recon.ChannelStatus{"OK": "DONE"}}, "status_map"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error = %v, want one naming %s", err, tc.want)
			}
		})
	}
	_, err := New(Config{BaseURL: "ftp://user:hunter2@example.com"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New error = %v, want one without the password", err)
	}
	if _, err := New(Config{BaseURL: "https://pay.example.com/api"}); err != nil {
		t.Errorf("New(valid) = %v", err)
	}
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	body := []byte(paidBody)
	sig := Sign(testSecret, body)
	// RFC 4231 test case 2.
	if got, want := Sign("Jefe", []byte("what do ya want for nothing?")), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Errorf("Sign(RFC 4231 case 2) = %s, want %s", got, want)
	}
	if len(sig) != 64 || strings.ToLower(sig) != sig {
		t.Errorf("Sign = %q, want 64 lower-case hex digits", sig)
	}
	if err := Verify(testSecret, body, sig); err != nil {
		t.Errorf("Verify(valid) = %v", err)
	}
	if err := Verify(testSecret, body, strings.ToUpper(sig)); err != nil {
		t.Errorf("Verify(upper-case hex) = %v", err)
	}
	if err := Verify(testSecret, body, " "+sig+" "); err != nil {
		t.Errorf("Verify(padded) = %v", err)
	}
	for name, s := range map[string]string{
		"empty":       "",
		"other key":   Sign("other", body),
		"truncated":   sig[:62],
		"not hex":     "xyz",
		"flipped bit": flip(sig),
	} {
		err := Verify(testSecret, body, s)
		if !errors.Is(err, channel.ErrBadSignature) {
			t.Errorf("Verify(%s) = %v, want ErrBadSignature", name, err)
			continue
		}
		if strings.Contains(err.Error(), testSecret) || (s != "" && strings.Contains(err.Error(), s)) {
			t.Errorf("Verify(%s) error %q leaks the secret or signature", name, err)
		}
	}
	if Sign("a", body) == Sign("b", body) || Sign("a", body) == Sign("a", append(body, ' ')) {
		t.Error("Sign does not depend on its inputs")
	}
}

func flip(hexSig string) string {
	b := []byte(hexSig)
	if b[0] == '0' {
		b[0] = '1'
	} else {
		b[0] = '0'
	}
	return string(b)
}

func TestParseResponseDirect(t *testing.T) {
	t.Parallel()
	r, err := ParseResponse([]byte(paidBody), "ORD-7", Config{})
	if err != nil || r.Status != recon.ChannelPaid || r.Amount != 100 || r.Currency != "CNY" || r.PaidAt.Location() != time.UTC {
		t.Errorf("ParseResponse = %+v, %v", r, err)
	}
	if _, err := ParseResponse([]byte(`{"code":"9","msg":"boom"}`), "ORD-7", Config{}); err == nil || errors.Is(err, channel.ErrMalformed) {
		t.Errorf("ParseResponse(error code) = %v, want a non-malformed error", err)
	}
}
