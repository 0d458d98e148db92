package stripe_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/stripe"
)

// FuzzParseBalanceTransactions feeds arbitrary statement files to
// ParseBalanceTransactions: it must never panic, every error is a bad
// statement, and every line it emits is valid and of the day.
func FuzzParseBalanceTransactions(f *testing.F) {
	f.Add(stmtFixture(f))
	f.Add([]byte(`{"object":"list","data":[],"has_more":false,"url":"/v1/balance_transactions"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := stripe.ParseBalanceTransactions(bytes.NewReader(data), stmtDay, time.UTC, func(l recon.StatementLine) error {
			if err := l.Validate(); err != nil {
				t.Fatalf("emitted an invalid line: %v", err)
			}
			if l.OccurredAt.Format(time.DateOnly) != stmtDay {
				t.Fatalf("emitted a line of %s", l.OccurredAt)
			}
			return nil
		})
		if err != nil && !errors.Is(err, channel.ErrBadStatement) {
			t.Fatalf("error %v is not a bad statement", err)
		}
	})
}
