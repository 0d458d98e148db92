package stripe_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/stripe"
)

// FuzzParseBalanceTransactions feeds arbitrary statement files to
// ParseBalanceTransactions: it must never panic, every error is a bad
// statement, and every line it emits is valid and of the day.
func FuzzParseBalanceTransactions(f *testing.F) {
	f.Add(stmtFixture(f))
	f.Add([]byte(`{"object":"list","data":[],"has_more":false,"url":"/v1/balance_transactions"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := channeltest.CheckStatementParse(t, func(emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
			return stripe.ParseBalanceTransactions(bytes.NewReader(data), stmtDay, time.UTC, channel.StatementLimits{}, emit)
		})
		for _, l := range lines {
			if l.OccurredAt.Format(time.DateOnly) != stmtDay {
				t.Fatalf("emitted a line of %s", l.OccurredAt)
			}
		}
	})
}
