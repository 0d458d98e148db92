package channeltest

import (
	"errors"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// CheckStatementParse runs parse, a statement parser reading one file, and
// fails t unless it behaves as every parser must, whatever the file: an
// error wraps channel.ErrBadStatement, every line emitted is valid, and
// totals read from the file (Present) count the lines emitted. It returns
// the lines, nil when the file was refused. Fuzz targets of statement
// parsers call it.
func CheckStatementParse(t testing.TB, parse func(emit func(recon.StatementLine) error) (recon.StatementTotals, error)) []recon.StatementLine {
	t.Helper()
	var lines []recon.StatementLine
	var payments, refunds int64
	totals, err := parse(func(l recon.StatementLine) error {
		if err := l.Validate(); err != nil {
			t.Fatalf("emitted an invalid line: %v", err)
		}
		if l.Kind == recon.LineRefund {
			refunds++
		} else {
			payments++
		}
		lines = append(lines, l)
		return nil
	})
	if err != nil {
		if !errors.Is(err, channel.ErrBadStatement) {
			t.Fatalf("error %v is not a bad statement", err)
		}
		return nil
	}
	if totals.Present && (totals.PaymentsCount != payments || totals.RefundsCount != refunds) {
		t.Fatalf("totals %+v for %d payments and %d refunds", totals, payments, refunds)
	}
	return lines
}
