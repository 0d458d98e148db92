package console_test

import (
	"context"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// A statement line the channel's lookup did not confirm is listed, filtered
// and exported like every kind.
func TestStatementConflictIsListedFilteredAndExported(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		f := repo.Finding{Order: *e.orders["o-stuck"], Mismatch: recon.Mismatch{Kind: recon.MismatchStatementConflict,
			LocalStatus: recon.StatusPending, ChannelStatus: recon.ChannelPending, LocalAmount: 2550, LocalCurrency: "CNY",
			ChannelTxnID: "T-LINE", Detail: "statement line 4: paid 2550 CNY (transaction T-LINE); the channel's lookup says PENDING"}}
		if _, err := db.Store.RecordFindings(context.Background(), []repo.Finding{f}, repo.CommitMeta{Source: "statement", Now: t0}); err != nil {
			t.Fatal(err)
		}
		has(t, e.get("/mismatches", viewer), 200, `<option value="STATEMENT_CONFLICT"`, `id="total-count">4<`)
		w := e.get("/mismatches?kind=STATEMENT_CONFLICT", viewer)
		has(t, w, 200, "o-stuck", `id="total-count">1<`)
		lacks(t, w, "o-amt")
		has(t, e.get("/mismatches.csv?kind=STATEMENT_CONFLICT", viewer), 200, "STATEMENT_CONFLICT", "o-stuck", "T-LINE",
			"the channel's lookup says PENDING")
	})
}
