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

	"github.com/recon-dev/recon"
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

// TestLookupRefundAgainstStripeMock checks the refund request against
// Stripe's OpenAPI spec (path, method, no unknown parameter), and that the
// adapter and the SDK both read stripe-mock's refund fixture, whose id is
// the one asked for.
func TestLookupRefundAgainstStripeMock(t *testing.T) {
	url := stripeMock(t)
	c, err := stripe.New(stripe.Config{BaseURL: url, APIKey: "sk_test_123", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := recon.Refund{RefundNo: "RF-1", OrderNo: "ORD-1", ChannelRefundID: "re_1Nispe2eZvKYlo2Cd31jOCgZ", Amount: 100, Currency: "USD"}
	got, err := c.LookupRefund(context.Background(), r)
	if err != nil {
		t.Fatalf("stripe-mock refused the refund request, or the adapter its answer: %v", err)
	}
	if got.ChannelRefundID != r.ChannelRefundID || !got.Status.Valid() || got.Status == recon.RefundChannelNotFound || got.Currency == "" {
		t.Errorf("stripe-mock's refund read as %+v", got)
	}
	// No re_ id: nothing is asked, and the error names the refund.
	_, err = c.LookupRefund(context.Background(), recon.Refund{RefundNo: "RF-2", OrderNo: "ORD-1"})
	if channel.ClassOf(err) != channel.ClassPermanent || !strings.Contains(err.Error(), "RF-2") || !strings.Contains(err.Error(), "channel_refund_id") {
		t.Errorf("refund without channel_refund_id: %v", err)
	}
}

// TestLookupAndCloseAgainstStripeMock checks the payment intent requests
// (retrieve with expand[0]=latest_charge, cancel with cancellation_reason)
// against Stripe's OpenAPI spec the same way.
func TestLookupAndCloseAgainstStripeMock(t *testing.T) {
	url := stripeMock(t)
	c, err := stripe.New(stripe.Config{BaseURL: url, APIKey: "sk_test_123", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	o := recon.Order{OrderNo: "ORD-1", ChannelTxnID: "pi_1Nispe2eZvKYlo2Cd31jOCgZ", Amount: 1099, Currency: "USD"}
	got, err := c.Lookup(context.Background(), o)
	if err != nil || !got.Status.Valid() || got.TxnID == "" {
		t.Fatalf("stripe-mock's intent read as %+v, %v", got, err)
	}
	// stripe-mock answers the cancel with its fixture, whose status is not
	// canceled: the adapter refuses that answer, but the request itself was
	// accepted (a refused parameter would be HTTP 400).
	if err := c.CloseOrder(context.Background(), o); err != nil && strings.Contains(err.Error(), "HTTP 400") {
		t.Errorf("stripe-mock refused the cancel request: %v", err)
	}
}
