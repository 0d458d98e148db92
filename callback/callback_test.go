package callback_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/callback"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/httpjson"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo/repotest"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type handlerFunc func(ctx context.Context, channel string, body []byte, header http.Header) (jobs.CallbackResult, error)

func (f handlerFunc) Handle(ctx context.Context, ch string, body []byte, h http.Header) (jobs.CallbackResult, error) {
	return f(ctx, ch, body, h)
}

func post(t *testing.T, url, ctype string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, ctype, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func seed(t *testing.T, db repotest.DB, no, ch string) recon.Order {
	t.Helper()
	o := repotest.Order(no, t0)
	o.Channel = ch
	db.Seed(t, &o)
	got, err := db.Store.GetOrderByNo(context.Background(), no)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestListener runs real notifications through the listener, the jobs and
// the database: Alipay's form is read from the body only, duplicates
// delivered at once settle the order once, and the limits hold.
func TestListener(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		keys, err := simulator.TestKeys()
		if err != nil {
			t.Fatal(err)
		}
		ali, err := alipay.New(alipay.Config{Name: "ali", AppID: simulator.TestAlipayAppID, PrivateKey: keys.AlipayAppKey, AlipayPublicKey: &keys.AlipayKey.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		cbs := &jobs.Callbacks{Store: db.Store, Clock: recon.NewFakeClock(t0.Add(time.Minute)),
			Notifiers: map[string]channel.Notifier{"ali": ali, "sim": simulator.New(simulator.Config{})}}
		srv := httptest.NewServer(callback.New(callback.Options{Handler: cbs, Kinds: map[string]string{"ali": "alipay", "sim": "simulator"}}).Handler())
		defer srv.Close()

		// Alipay: the query string (a forger's amount and sign) is never
		// merged into the signed form.
		order := seed(t, db, "ALI-1", "ali")
		form := url.Values{"notify_id": {"N-1"}, "notify_type": {"trade_status_sync"}, "app_id": {simulator.TestAlipayAppID},
			"out_trade_no": {"ALI-1"}, "trade_no": {"2026112322001"}, "trade_status": {"TRADE_SUCCESS"},
			"total_amount": {alipay.FormatAmount(order.Amount, "CNY")}, "gmt_payment": {"2026-11-23 20:00:05"}}
		if err := alipay.SignNotification(keys.AlipayKey, form); err != nil {
			t.Fatal(err)
		}
		code, body := post(t, srv.URL+"/callbacks/ali?total_amount=0.01&sign=AAAA", "application/x-www-form-urlencoded", []byte(form.Encode()))
		if code != 200 || body != "success" {
			t.Fatalf("alipay: %d %q, want 200 success", code, body)
		}
		if o, _ := db.Store.GetOrder(ctx, order.ID); o.Status != recon.StatusPaid {
			t.Fatalf("order %s, want PAID", o.Status)
		}
		form.Set("total_amount", "0.01")
		if code, body := post(t, srv.URL+"/callbacks/ali", "application/x-www-form-urlencoded", []byte(form.Encode())); code != 400 || body != "fail" {
			t.Fatalf("tampered alipay: %d %q, want 400 fail", code, body)
		}

		// Ten deliveries of one notification at once: all handled, one
		// transition.
		sim := seed(t, db, "SIM-1", "sim")
		amount := sim.Amount
		note, _ := json.Marshal(httpjson.Data{Order: "SIM-1", Status: "PAID", Amount: &amount, Currency: sim.Currency, TxnID: "T1"})
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/callbacks/sim", strings.NewReader(string(note)))
				req.Header.Set(httpjson.SignatureHeader, httpjson.Sign(simulator.DefaultSecret, note))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != httpjson.NotifyAnswer {
					t.Errorf("duplicate delivery: %d %q", resp.StatusCode, b)
				}
			}()
		}
		wg.Wait()
		var n int64
		if err := db.Store.DB().Table("order_transitions").Where("order_id = ?", sim.ID).Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("%d transitions (%v), want 1", n, err)
		}

		// Limits: no other route, POST only, 64 KB.
		big := make([]byte, callback.MaxBodyBytes+1)
		for _, tc := range []struct {
			method, path string
			body         []byte
			want         int
		}{
			{"POST", "/callbacks/sim", big, http.StatusRequestEntityTooLarge},
			{"GET", "/callbacks/sim", nil, http.StatusMethodNotAllowed},
			{"GET", "/mismatches", nil, http.StatusNotFound},
			{"GET", "/metrics", nil, http.StatusNotFound},
			{"POST", "/callbacks/nope", note, http.StatusNotFound},
			{"POST", "/callbacks/sim", []byte(`{"order":`), http.StatusBadRequest},
		} {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(string(tc.body)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || strings.Contains(string(b), "goroutine") {
				t.Errorf("%s %s: %d %q, want %d", tc.method, tc.path, resp.StatusCode, b, tc.want)
			}
		}
	})
}

// TestAnswers checks each kind's handled and refused answers.
func TestAnswers(t *testing.T) {
	result := jobs.CallbackResult{}
	h := handlerFunc(func(context.Context, string, []byte, http.Header) (jobs.CallbackResult, error) {
		return result, errors.New("database is down at 10.0.0.7")
	})
	kinds := map[string]string{"a": "alipay", "w": "wechatpay", "s": "stripe", "h": "httpjson"}
	srv := httptest.NewServer(callback.New(callback.Options{Handler: h, Kinds: kinds}).Handler())
	defer srv.Close()
	for _, tc := range []struct {
		ch     string
		res    jobs.CallbackResult
		code   int
		substr string
	}{
		{"a", jobs.CallbackResult{Handled: true}, 200, "success"},
		{"a", jobs.CallbackResult{Status: 401, Outcome: jobs.CallbackBadSignature}, 400, "fail"},
		{"w", jobs.CallbackResult{Handled: true}, 204, ""},
		{"w", jobs.CallbackResult{Status: 401, Outcome: jobs.CallbackBadSignature}, 401, `{"code":"FAIL","message":"signature does not verify"}`},
		{"w", jobs.CallbackResult{Status: 503, Outcome: "order_unknown"}, 503, `"code":"FAIL"`},
		{"s", jobs.CallbackResult{Handled: true}, 200, "received"},
		{"s", jobs.CallbackResult{Status: 503, Outcome: jobs.CallbackError}, 400, "try again later"},
		{"h", jobs.CallbackResult{Handled: true}, 200, `{"code":"0000"}`},
		{"h", jobs.CallbackResult{Status: 400, Outcome: jobs.CallbackMalformed}, 400, "malformed"},
	} {
		result = tc.res
		code, body := post(t, srv.URL+"/callbacks/"+tc.ch, "application/json", []byte("{}"))
		if code != tc.code || !strings.Contains(body, tc.substr) || strings.Contains(body, "10.0.0.7") {
			t.Errorf("%s %+v: %d %q, want %d with %q", kinds[tc.ch], tc.res, code, body, tc.code, tc.substr)
		}
	}
}

// TestPanicRecovered: a handler's panic answers that notification as
// refused, and the listener serves the next one.
func TestPanicRecovered(t *testing.T) {
	calls := 0
	h := handlerFunc(func(context.Context, string, []byte, http.Header) (jobs.CallbackResult, error) {
		calls++
		if calls == 1 {
			panic("boom")
		}
		return jobs.CallbackResult{Handled: true}, nil
	})
	srv := httptest.NewServer(callback.New(callback.Options{Handler: h, Kinds: map[string]string{"w": "wechatpay"}}).Handler())
	defer srv.Close()
	if code, body := post(t, srv.URL+"/callbacks/w", "application/json", nil); code != 500 || strings.Contains(body, "boom") {
		t.Fatalf("panicking handler: %d %q, want 500 without the panic", code, body)
	}
	if code, _ := post(t, srv.URL+"/callbacks/w", "application/json", nil); code != 204 {
		t.Fatalf("after a panic: %d, want 204", code)
	}
}

// TestShutdownFinishesInFlight: a notification being handled when the
// listener shuts down is finished and answered; Shutdown waits for it.
func TestShutdownFinishesInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := handlerFunc(func(ctx context.Context, _ string, _ []byte, _ http.Header) (jobs.CallbackResult, error) {
		close(entered)
		<-release
		if ctx.Err() != nil {
			return jobs.CallbackResult{Status: 503}, ctx.Err()
		}
		return jobs.CallbackResult{Handled: true}, nil
	})
	cs := callback.New(callback.Options{Handler: h, Kinds: map[string]string{"h": "httpjson"}})
	hs := cs.HTTPServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(ln) }()
	began := make(chan struct{})
	hs.RegisterOnShutdown(func() { close(began) })
	type answer struct {
		code int
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/callbacks/h", "application/json", strings.NewReader("{}"))
		if err != nil {
			got <- answer{err: err}
			return
		}
		resp.Body.Close()
		got <- answer{code: resp.StatusCode}
	}()
	<-entered
	done := make(chan error, 1)
	go func() { done <- hs.Shutdown(context.Background()) }()
	<-began
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a notification was in flight", err)
	default:
	}
	close(release)
	if a := <-got; a.err != nil || a.code != 200 {
		t.Fatalf("in-flight notification: %+v, want 200", a)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
