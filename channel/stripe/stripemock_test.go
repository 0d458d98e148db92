package stripe_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"go/build"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/stripe"
)

// stripeMock starts stripe-mock (github.com/stripe/stripe-mock, which
// validates requests against Stripe's OpenAPI spec) and returns its URL, or
// skips the test when it is not installed.
func stripeMock(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		bin = filepath.Join(build.Default.GOPATH, "bin", "stripe-mock")
		if _, err := exec.LookPath(bin); err != nil {
			t.Skip("stripe-mock is not installed (go install github.com/stripe/stripe-mock@v0.203.0)")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-http-addr", addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Listening for HTTP") {
				ready <- true
				break
			}
		}
		for sc.Scan() { // drain
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("stripe-mock stopped before listening")
		}
	case <-time.After(time.Minute):
		t.Fatal("stripe-mock did not start within a minute")
	}
	return "http://" + addr
}

// TestFetchStatementAgainstStripeMock checks the statement requests against
// Stripe's OpenAPI spec: stripe-mock refuses unknown or malformed
// parameters (the window, the page size, the expansion, starting_after).
func TestFetchStatementAgainstStripeMock(t *testing.T) {
	url := stripeMock(t)
	c, err := stripe.New(stripe.Config{BaseURL: url, APIKey: "sk_test_123", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := c.FetchStatement(context.Background(), stmtDay, &buf); err != nil {
		t.Fatalf("stripe-mock refused the statement requests: %v", err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"object":"balance_transaction"`)) {
		t.Errorf("no balance transaction in %.300s", buf.String())
	}
	// stripe-mock's fixture is of another day and kind: the strict parse
	// refuses it, naming the line.
	_, _, err = parseStmt(t, buf.Bytes())
	if !errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), "line 1 (page 1)") {
		t.Errorf("parse of stripe-mock's page: %v", err)
	}
}
