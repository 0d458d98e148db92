package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
)

// A channel's message is stored and printed without its control characters:
// an answer cannot clear the operator's screen and fake a verdict.
func TestChannelTextIsStoredAndPrintedWithoutEscapes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"code":"9999","msg":"\u001b[2J\u001b[H\u001b]0;ok\u0007 ALL ORDERS RECONCILED OK\r\n\u009b31m","data":null}`))
	}))
	defer srv.Close()
	created := time.Now().UTC().Add(-time.Hour)
	o := cliOrder("esc-1", recon.StatusPending, created)
	o.Channel = "hj"
	cfg, store := seedCLI(t, "  - {name: hj, kind: httpjson, base_url: '"+srv.URL+"', insecure: true}\n", []recon.Order{o})

	code, out, stderr := runCLI(t, nil, "run", "--config", cfg)
	if code != 0 {
		t.Fatalf("run: %d %s\n%s", code, stderr, out)
	}
	got, err := store.GetOrderByNo(context.Background(), "esc-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.LastQueryError, "ALL ORDERS RECONCILED OK") || hasControl(got.LastQueryError) {
		t.Fatalf("stored last_query_error %q: want the message without control characters", got.LastQueryError)
	}
	code, out, stderr = runCLI(t, nil, "check", "esc-1", "--config", cfg)
	if code != 0 {
		t.Fatalf("check: %d %s", code, stderr)
	}
	if !strings.Contains(out, "ALL ORDERS RECONCILED OK") {
		t.Fatalf("check does not show the channel's message:\n%s", out)
	}
	for name, s := range map[string]string{"check output": out, "check stderr": stderr} {
		if hasControl(strings.ReplaceAll(s, "\n", "")) {
			t.Fatalf("%s holds control characters: %q", name, s)
		}
	}
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) })
}
