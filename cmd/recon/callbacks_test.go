package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

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
