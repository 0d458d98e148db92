package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestConsoleConfig(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	for _, tc := range []struct{ yaml, key string }{
		{"console:\n  addr: 'localhost'\n", "console.addr"},
		{"console:\n  timezone: Mars/Olympus\n", "console.timezone"},
		{"console:\n  auth: {mode: magic}\n", "console.auth: mode must be proxy or basic"},
		{"console:\n  auth: {trusted_proxies: [10.0.0.0/33]}\n", "console.auth: trusted_proxies[0]"},
		{"console:\n  auth: {trusted_proxies: [127.0.0.1/32], users: [{name: a, role: boss}]}\n", `console.auth: users[0] (a): role "boss"`},
		{"console:\n  auth: {mode: basic, users: [{name: a, role: admin, password_hash: hunter2}]}\n", "console.auth.users[0] (a).password_hash: is not a bcrypt hash"},
		{"console:\n  auth: {mode: basic, users: [{name: a, role: admin, password_hash: '${NOPE_HASH}'}]}\n", "console.auth.users[0].password_hash: environment variable NOPE_HASH is not set"},
		{"console:\n  auth: {trusted_proxies: [127.0.0.1/32], users: [{name: a, role: admin}, {name: A, role: viewer}]}\n", "listed twice"},
		{"console:\n  csrf_key: '${NOPE_KEY}'\n", "console.csrf_key"},
		{"console:\n  auth: {usres: []}\n", `unknown key "usres" in console.auth`},
	} {
		_, err := LoadConfig("cfg.yaml", []byte(tc.yaml), noEnv)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.key) || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("%q: error %v, want one naming %q", tc.yaml, err, tc.key)
		}
	}
	cfg, err := LoadConfig("cfg.yaml", []byte("console:\n  auth: {mode: basic, users: [{name: ann, role: admin, password_hash: '${ANN_HASH}'}]}\n"),
		func(k string) string { return map[string]string{"ANN_HASH": string(hash)}[k] })
	if err != nil || cfg.Console.Auth.Users[0].PasswordHash != string(hash) || cfg.Console.Addr != ":8080" || cfg.Console.Timezone != "UTC" {
		t.Fatalf("cfg %+v, %v", cfg.Console, err)
	}
}

// TestServeRefusesAWeakPasswordHash: a bcrypt hash of cost below 10 stops
// every command at start-up (exit 2), naming the user's key.
func TestServeRefusesAWeakPasswordHash(t *testing.T) {
	weak, _ := bcrypt.GenerateFromPassword([]byte("pw"), 9)
	strong, _ := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	p := writeConfig(t, "database: {driver: sqlite, dsn: '"+filepath.Join(t.TempDir(), "r.db")+"'}\n"+
		"console:\n  auth: {mode: basic, users: [{name: ann, role: admin, password_hash: '${ANN_HASH}'}, {name: alice, role: viewer, password_hash: '${ALICE_HASH}'}]}\n")
	env := map[string]string{"ANN_HASH": string(strong), "ALICE_HASH": string(weak)}
	for _, cmd := range []string{"serve", "migrate"} {
		code, _, stderr := runCLI(t, env, cmd, "--config", p)
		if code != exitUsage || !strings.Contains(stderr, "console.auth.users[1] (alice).password_hash: bcrypt cost 9 is below 10") || strings.Contains(stderr, string(weak)) {
			t.Fatalf("%s with a cost-9 hash: exit %d, %s", cmd, code, stderr)
		}
	}
}

func TestServeRefusesAConsoleNobodyCanUse(t *testing.T) {
	p := writeConfig(t, "database: {driver: sqlite, dsn: '"+filepath.Join(t.TempDir(), "r.db")+"'}\n")
	code, _, stderr := runCLI(t, nil, "serve", "--config", p)
	if code != exitUsage || !strings.Contains(stderr, "console.auth") || !strings.Contains(stderr, "no users") {
		t.Fatalf("serve without users: %d %s", code, stderr)
	}
}

// lineSignal closes ready when a written line contains want.
type lineSignal struct {
	mu    sync.Mutex
	buf   strings.Builder
	want  string
	ready chan struct{}
	once  sync.Once
}

func (l *lineSignal) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if strings.Contains(l.buf.String(), l.want) {
		l.once.Do(func() { close(l.ready) })
	}
	return len(p), nil
}

// startServe migrates the database of config p and runs recon serve with
// it until the console serves; cancel stops it, done has its exit code.
func startServe(t *testing.T, p string) (logs *lineSignal, cancel func(), done chan int) {
	t.Helper()
	if code, _, stderr := runCLI(t, nil, "migrate", "--config", p); code != 0 {
		t.Fatal(stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs = &lineSignal{want: "console serving", ready: make(chan struct{})}
	done = make(chan int)
	go func() {
		done <- Main(ctx, []string{"serve", "--config", p}, io.Discard, logs, func(string) string { return "" })
	}()
	select {
	case <-logs.ready:
	case code := <-done:
		cancel()
		t.Fatalf("serve exited %d: %s", code, logs.buf.String())
	}
	return logs, cancel, done
}

func TestServeServesTheConsoleUntilStopped(t *testing.T) {
	addr := freeAddr(t)
	db := filepath.Join(t.TempDir(), "r.db")
	p := writeConfig(t, fmt.Sprintf("database: {driver: sqlite, dsn: '%s'}\nmetrics: {addr: ''}\nconsole:\n  addr: '%s'\n  auth: {trusted_proxies: [127.0.0.1/32], users: [{name: ann@example.com, role: admin}]}\n", db, addr))
	logs, cancel, done := startServe(t, p)
	get := func(path, user string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if user != "" {
			req.Header.Set("X-Forwarded-Email", user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/healthz", "") != 200 || get("/mismatches", "") != 403 || get("/mismatches", "ann@example.com") != 200 {
		t.Fatal("console answers wrong")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve stopped with %d: %s", code, logs.buf.String())
	}
}

// TestBenchConsole runs the console benchmark small: every request answers,
// the export has every row.
func TestBenchConsole(t *testing.T) {
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+filepath.Join(t.TempDir(), "b.db")+"'}\n")
	code, out, stderr := runCLI(t, nil, "bench", "console", "--mismatches", "300", "--repeat", "1", "--config", cfg)
	if code != 0 {
		t.Fatalf("bench console: %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"totals (MismatchGroups)", "GET /mismatches?page=6 ", "GET /mismatches.csv", "4 list pages at once", "peak RSS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
