package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"

	"github.com/recon-dev/recon/channel/httpjson"
	"github.com/recon-dev/recon/channel/simulator"
)

func TestCallbacksConfig(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"callbacks: {addr: nowhere}\n", "callbacks.addr"},
		{"console: {addr: ':9000'}\ncallbacks: {addr: ':9000'}\n", "callbacks.addr: is console.addr"},
		{"callbacks: {adr: ':9000'}\n", `unknown key "adr" in callbacks`},
		{"channels: [{name: w, kind: wechatpay, api_v3_key: '${NOPE_V3}'}]\n", "channels[0].api_v3_key: environment variable NOPE_V3"},
	} {
		_, err := LoadConfig("cfg.yaml", []byte(tc.yaml), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %q", tc.yaml, err, tc.key)
		}
	}
}

// TestServeReceivesCallbacks: with callbacks.addr, recon serve answers the
// channels on a listener of its own, which serves no console route (and the
// console none of its routes).
func TestServeReceivesCallbacks(t *testing.T) {
	consoleAddr, cbAddr := freeAddr(t), freeAddr(t)
	db := filepath.Join(t.TempDir(), "r.db")
	p := writeConfig(t, fmt.Sprintf("database: {driver: sqlite, dsn: '%s'}\nmetrics: {addr: ''}\n"+
		"channels: [{name: sim, kind: simulator}]\ncallbacks: {addr: '%s'}\n"+
		"console:\n  addr: '%s'\n  auth: {trusted_proxies: [127.0.0.1/32], users: [{name: ann@example.com, role: admin}]}\n", db, cbAddr, consoleAddr))
	logs, cancel, done := startServe(t, p)
	send := func(addr, path string, body []byte, sig string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(string(body)))
		req.Header.Set(httpjson.SignatureHeader, sig)
		req.Header.Set("X-Forwarded-Email", "ann@example.com")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	body := []byte(`{"order":"NOT-YET","status":"PAID","amount":100,"currency":"CNY","txn_id":"T"}`)
	// An order recon does not know yet: refused, so the channel retries.
	if code, b := send(cbAddr, "/callbacks/sim", body, httpjson.Sign(simulator.DefaultSecret, body)); code != 400 || !strings.Contains(b, "order not found yet") {
		t.Fatalf("unknown order: %d %s", code, b)
	}
	if code, _ := send(cbAddr, "/mismatches", nil, ""); code != 404 {
		t.Fatalf("console route on the callback listener: %d", code)
	}
	if code, _ := send(consoleAddr, "/callbacks/sim", body, httpjson.Sign(simulator.DefaultSecret, body)); code == 200 {
		t.Fatal("the console answers notifications")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve stopped with %d: %s", code, logs.buf.String())
	}
	if !strings.Contains(logs.buf.String(), "callback listener stopped") {
		t.Fatalf("no graceful stop of the callback listener: %s", logs.buf.String())
	}
}

// TestBenchCallbacks runs the callback benchmark small: every order moves
// exactly once, by a notification or by the pass, and every notification is
// answered as handled.
func TestBenchCallbacks(t *testing.T) {
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+filepath.Join(t.TempDir(), "b.db")+"'}\nlog: {level: error}\n")
	code, out, stderr := runCLI(t, nil, "bench", "callbacks", "--orders", "120", "--rate", "400", "--lookup-latency", "1ms", "--config", cfg)
	if code != 0 {
		t.Fatalf("bench callbacks: %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"120 orders PAID, 120 transitions, 0 orders moved more than once", "answer latency: p50 ", " refused, 0 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestSimServePostsCallbacks: recon sim serve --callbacks-to posts the
// channel's notifications of the database's PENDING orders, signed with the
// simulator's printed secret (forged ones aside), to /callbacks/{channel}.
func TestSimServePostsCallbacks(t *testing.T) {
	var orders []recon.Order
	for i := range 20 {
		orders = append(orders, cliOrder(fmt.Sprintf("cb-%02d", i), recon.StatusPending, time.Now().UTC().Add(-time.Hour)))
	}
	cfg, _ := seedCLI(t, "  - {name: sim, kind: simulator, simulator: {seed: 3, paid_rate: 1}}\n", orders)
	type post struct {
		path string
		body []byte
		sig  string
	}
	posts := make(chan post, 100)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts <- post{r.URL.Path, b, r.Header.Get(httpjson.SignatureHeader)}
	}))
	defer recv.Close()
	if code, _, stderr := runCLI(t, nil, "sim", "serve", "--callbacks-to", "http://x/notify", "--config", cfg); code != exitUsage || !strings.Contains(stderr, "/callbacks/{channel name}") {
		t.Fatalf("a --callbacks-to without /callbacks/: %d %s", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"sim", "serve", "--addr", "127.0.0.1:0", "--keys-dir", simKeysDir(t),
			"--callbacks-to", recv.URL + "/callbacks/sim", "--config", cfg}, &out, &errb, func(string) string { return "" })
	}()
	got := map[string]bool{}
	verified := 0
	for verified < 5 {
		select {
		case p := <-posts:
			_, rest, _ := strings.Cut(out.String(), `secret: "`)
			secret, _, _ := strings.Cut(rest, `"`)
			if p.path != "/callbacks/sim" {
				t.Fatalf("posted to %s", p.path)
			}
			n, err := httpjson.DecodeNotification(httpjson.Config{Secret: secret}, p.body, p.sig)
			if err != nil {
				continue // a forged one
			}
			if n.Result.Status != recon.ChannelPaid || !strings.HasPrefix(n.OrderNo, "cb-") {
				t.Fatalf("notification %+v", n)
			}
			got[n.OrderNo] = true
			verified++
		case code := <-done:
			t.Fatalf("sim serve exited %d: %s", code, errb.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d notifications verified: %s", verified, out.String())
		}
	}
	cancel()
	<-done
}
