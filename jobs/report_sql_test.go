package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
	_ "time/tzdata" // the zones of the chart's days, on any machine

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// mixedMismatches are n mismatches of every kind, with amounts of both
// signs and at the ends of int64, currencies that differ or are missing,
// several days and several rows at the same instant.
func mixedMismatches(n int) []repo.MismatchRecord {
	rng := rand.New(rand.NewPCG(7, 7))
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	amounts := []int64{0, 1, 399, 10050, -45, -1, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, 1 << 40}
	pick := func(v ...string) string { return v[rng.IntN(len(v))] }
	var out []repo.MismatchRecord
	for i := range n {
		m := repo.MismatchRecord{MerchantID: pick("m1", "m2", "m3"), Channel: pick("alipay", "wechat"),
			DetectedAt: day.Add(time.Duration(rng.IntN(5*24)) * time.Hour / 2).Add(time.Duration(i%3) * 1500 * time.Microsecond),
			Resolution: recon.Resolution(pick("OPEN", "ACKNOWLEDGED", "RESOLVED")),
			Mismatch: recon.Mismatch{Kind: recon.MismatchKinds[rng.IntN(len(recon.MismatchKinds))],
				LocalStatus: recon.Status(pick("PENDING", "PAID", "CLOSED")), ChannelStatus: recon.ChannelStatus(pick("PAID", "CLOSED", "NOT_FOUND")),
				LocalAmount: amounts[rng.IntN(len(amounts))], ChannelAmount: amounts[rng.IntN(len(amounts))],
				LocalCurrency: pick("CNY", "JPY", "KWD"), ChannelCurrency: pick("", "CNY", "USD")}}
		if i%10 == 9 { // ties: the same instant as the row before
			m.DetectedAt = out[len(out)-1].DetectedAt
		}
		out = append(out, m)
	}
	return out
}

func totalsJSON(t *testing.T, tot jobs.Totals) string {
	t.Helper()
	b, err := json.Marshal(tot)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTotalsInSQLAreTheRowsTotals: the totals the database sums in groups
// are, to the minor unit, the totals of the rows themselves, for every
// filter, with amounts whose sums pass int64.
func TestTotalsInSQLAreTheRowsTotals(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		rows := mixedMismatches(400)
		// Around the ends of daylight saving time in New York (2026-03-08
		// 07:00 and 2026-11-01 06:00 UTC) and Lord Howe Island (a half
		// hour: 2026-04-04 15:00 and 2026-10-03 15:30 UTC), every quarter hour.
		for _, at := range []time.Time{time.Date(2026, 3, 8, 3, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC),
			time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC), time.Date(2026, 10, 3, 12, 0, 0, 0, time.UTC)} {
			for q := range 24 {
				m := rows[q]
				m.DetectedAt = at.Add(time.Duration(q) * 15 * time.Minute)
				rows = append(rows, m)
			}
		}
		repotest.Mismatches(t, db.Store, rows)
		store := db.Store
		if db.Dialect == repo.MySQL {
			// MySQL runs with ONLY_FULL_GROUP_BY by default (MariaDB
			// does not): the totals must be read under it.
			cfg, err := mysqldrv.ParseDSN(db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Params == nil {
				cfg.Params = map[string]string{}
			}
			cfg.Params["sql_mode"] = "'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES'"
			if store, err = repo.Open(ctx, repo.MySQL, cfg.FormatDSN(), repo.Options{}); err != nil {
				t.Fatal(err)
			}
			defer store.Close()
		}
		for _, mf := range []repo.MismatchFilter{{}, {Unresolved: true}, {Kind: recon.MismatchAmount, Channel: "alipay"},
			{From: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Merchant: "m2"},
			{Kind: recon.MismatchStuckPending, Resolution: recon.ResolutionResolved}} {
			rows, err := store.ListMismatches(ctx, mf)
			if err != nil {
				t.Fatal(err)
			}
			// The days of the chart are days in the filter's zone: one
			// offset (days in SQL), daylight saving time (hours), and
			// daylight saving time by half an hour (quarter hours).
			for _, name := range []string{"UTC", "Asia/Shanghai", "America/New_York", "Australia/Lord_Howe"} {
				zone, err := time.LoadLocation(name)
				if err != nil {
					t.Fatal(err)
				}
				mf.Zone = zone
				groups, err := store.MismatchGroups(ctx, mf)
				if err != nil {
					t.Fatal(err)
				}
				want := jobs.RowTotals(rows, zone)
				if got := jobs.TotalsOf(groups); totalsJSON(t, got) != totalsJSON(t, want) {
					t.Fatalf("%+v in %s: totals from %d groups\n%s\nfrom %d rows\n%s", mf, name, len(groups), totalsJSON(t, got), len(rows), totalsJSON(t, want))
				}
			}
		}
	})
}

// TestMismatchPages: numbered pages and keyset pages each read the list in
// order, every row once, ties on the detection time included.
func TestMismatchPages(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		repotest.Mismatches(t, db.Store, mixedMismatches(100))
		mf := repo.MismatchFilter{Unresolved: true}
		all, err := db.Store.ListMismatches(ctx, mf)
		if err != nil {
			t.Fatal(err)
		}
		ids := func(rows []repo.MismatchRecord) string {
			var b bytes.Buffer
			for _, m := range rows {
				fmt.Fprintf(&b, "%d ", m.ID)
			}
			return b.String()
		}
		var numbered, keyset []repo.MismatchRecord
		for page := 0; ; page++ {
			f := mf
			f.Limit, f.Offset = 7, page*7
			rows, err := db.Store.ListMismatches(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if numbered = append(numbered, rows...); len(rows) < 7 {
				break
			}
		}
		f := mf
		f.Limit = 7
		for {
			rows, err := db.Store.ListMismatches(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if keyset = append(keyset, rows...); len(rows) < 7 {
				break
			}
			f.After = &rows[len(rows)-1]
		}
		if ids(numbered) != ids(all) || ids(keyset) != ids(all) {
			t.Fatalf("list %s\nnumbered pages %s\nkeyset pages %s", ids(all), ids(numbered), ids(keyset))
		}
	})
}
