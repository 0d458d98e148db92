package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// mappedConfig is a config file for db whose orders key is m.
func mappedConfig(t *testing.T, db repotest.DB, m repo.OrderMapping, extra string) string {
	t.Helper()
	b, err := yaml.Marshal(map[string]any{"orders": m})
	if err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, fmt.Sprintf(`database: {driver: %s, dsn: '%s'}
reconcile: {grace_period: 1s, jitter: 0, lookup_retry: {initial_interval: 1ms, max_interval: 5ms, max_elapsed: 100ms}}
log: {level: warn, format: json}
channels:
  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}
%s
%s`, db.Dialect, db.DSN, b, extra))
}

var autoIncrement = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// teamDDL is the team's table as the database describes it.
func teamDDL(t *testing.T, db repotest.DB) string {
	t.Helper()
	table := db.Schema.Mapping.Table
	var ddl string
	var err error
	if db.Dialect == repo.MySQL {
		var name string
		err = db.Store.DB().Raw("SHOW CREATE TABLE "+table).Row().Scan(&name, &ddl)
	} else {
		err = db.Store.DB().Raw("SELECT sql FROM sqlite_master WHERE name = ?", table).Row().Scan(&ddl)
	}
	if err != nil || ddl == "" {
		t.Fatalf("describe %s: %q, %v", table, ddl, err)
	}
	// The next auto-increment value is data, not the table's definition.
	return autoIncrement.ReplaceAllString(ddl, "")
}

// TestEveryCommandWorksOnAMappedTable runs migrate, run (sharded too),
// backfill with verification, check, report and mismatch list through the
// command line on both mapped schemas: orders move in the team's table,
// whose definition stays as it was.
func TestEveryCommandWorksOnAMappedTable(t *testing.T) {
	for _, sc := range []repotest.Schema{repotest.SchemaA, repotest.SchemaB} {
		t.Run(sc.Name, func(t *testing.T) {
			repotestForEachDialect(t, sc, func(t *testing.T, db repotest.DB) {
				before := teamDDL(t, db)
				cfg := mappedConfig(t, db, *sc.Mapping, "")
				code, out, stderr := runCLI(t, nil, "migrate", "--print", "--config", cfg)
				if code != 0 || !strings.Contains(out, "CREATE INDEX `idx_"+sc.Mapping.Table+"_recon_due` ON `"+sc.Mapping.Table+"`") {
					t.Fatalf("migrate --print: %d %s %s", code, out, stderr)
				}
				if code, out, stderr := runCLI(t, nil, "migrate", "--config", cfg); code != 0 {
					t.Fatalf("migrate: %d %s %s", code, out, stderr)
				}
				now := time.Now().UTC().Truncate(time.Second)
				var orders []*recon.Order
				for i := 0; i < 12; i++ {
					o := repotest.Order(fmt.Sprintf("MAP%03d", i), now)
					o.Amount = 1234 + int64(i)
					orders = append(orders, &o)
				}
				db.Seed(t, orders...)

				code, out, stderr = runCLI(t, nil, "run", "--shard", "0/2", "--output", "json", "--config", cfg)
				var res map[string]any
				if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
					t.Fatalf("run --shard 0/2: %d %s %s", code, out, stderr)
				}
				first := res["paid"].(float64)
				code, out, stderr = runCLI(t, nil, "run", "--output", "json", "--config", cfg)
				if code != 0 || json.Unmarshal([]byte(out), &res) != nil || first+res["paid"].(float64) != 12 || res["errors"].(float64) != 0 {
					t.Fatalf("run: %d %s %s (shard 0 paid %v)", code, out, stderr, first)
				}
				for _, o := range orders {
					got, err := db.Store.GetOrder(context.Background(), o.ID)
					if err != nil || got.Status != recon.StatusPaid || got.Amount != o.Amount || got.Currency != "CNY" || got.PaidAt == nil {
						t.Fatalf("%s after run: %+v, %v", o.OrderNo, got, err)
					}
				}
				from, to := now.Add(-2*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
				code, out, stderr = runCLI(t, nil, "backfill", "--from", from, "--to", to, "--include-terminal", "--output", "json", "--config", cfg)
				if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res["scanned"].(float64) != 12 || res["mismatches"].(float64) != 0 {
					t.Fatalf("backfill --include-terminal: %d %s %s", code, out, stderr)
				}
				if code, out, stderr := runCLI(t, nil, "check", "MAP003", "--config", cfg); code != 0 || !strings.Contains(out, "MAP003") {
					t.Fatalf("check: %d %s %s", code, out, stderr)
				}
				for _, args := range [][]string{{"report", "--format", "csv"}, {"mismatch", "list"}} {
					if code, out, stderr := runCLI(t, nil, append(args, "--config", cfg)...); code != 0 {
						t.Fatalf("%v: %d %s %s", args, code, out, stderr)
					}
				}
				if after := teamDDL(t, db); after != before {
					t.Fatalf("the team's table changed:\n%s\nwas\n%s", after, before)
				}
			})
		})
	}
}

// repotestForEachDialect runs body on SQLite and MySQL with schema sc.
func repotestForEachDialect(t *testing.T, sc repotest.Schema, body func(t *testing.T, db repotest.DB)) {
	t.Run("sqlite", func(t *testing.T) { body(t, repotest.NewSQLiteSchema(t, sc)) })
	t.Run("mysql", func(t *testing.T) { body(t, repotest.NewMySQLSchema(t, sc)) })
}

// TestMappingErrorsExitTwoNamingTheKey: a mapping that cannot work is
// refused before anything connects, and one the live table cannot hold when
// recon starts, each naming the key.
func TestMappingErrorsExitTwoNamingTheKey(t *testing.T) {
	// Before connecting: the database is unreachable, the exit is still 2.
	nowhere := repotest.DB{Dialect: repo.MySQL, DSN: "u:p@tcp(127.0.0.1:1)/x"}
	for key, mutate := range map[string]func(m *repo.OrderMapping){
		"orders.status_values.PENDING": func(m *repo.OrderMapping) { delete(m.StatusValues, "PENDING") },
		"orders.columns.amount":        func(m *repo.OrderMapping) { m.Columns.Amount = "" },
		"orders.currency":              func(m *repo.OrderMapping) { m.Columns.Currency = "" },
		"orders.other_terminal":        func(m *repo.OrderMapping) { m.OtherTerminal = []string{"2"} },
		"orders.amount_scale":          func(m *repo.OrderMapping) { m.AmountScale = -1 },
		"orders.channel_values.x":      func(m *repo.OrderMapping) { m.ChannelValues = map[string]string{"x": "nope"} },
		"orders.columns.status":        func(m *repo.OrderMapping) { m.Columns.Status = "state; DROP TABLE x" },
	} {
		m := copyMapping(*repotest.SchemaA.Mapping)
		mutate(&m)
		code, _, stderr := runCLI(t, nil, "run", "--config", mappedConfig(t, nowhere, m, ""))
		if code != exitUsage || !strings.Contains(stderr, key) {
			t.Errorf("%s: code %d, stderr %q", key, code, stderr)
		}
	}
	// Against the live table.
	repotestForEachDialect(t, repotest.SchemaB, func(t *testing.T, db repotest.DB) {
		for key, mutate := range map[string]func(m *repo.OrderMapping){
			"orders.table":                func(m *repo.OrderMapping) { m.Table = "no_such_table" },
			"orders.columns.paid_at":      func(m *repo.OrderMapping) { m.Columns.PaidAt = "paid_time" },
			"orders.columns.amount":       func(m *repo.OrderMapping) { m.AmountScale = 0 }, // DECIMAL(12,2) holds yuan
			"orders.columns.version":      func(m *repo.OrderMapping) { m.Columns.Version = "status" },
			"orders.columns.created_at":   func(m *repo.OrderMapping) { m.Columns.CreatedAt = "total_amount" },
			"orders.status_values.CLOSED": func(m *repo.OrderMapping) { m.StatusValues["CLOSED"] = []string{"CLOSED_BY_THE_MERCHANT_AT_LAST"} },
		} {
			m := copyMapping(*repotest.SchemaB.Mapping)
			mutate(&m)
			code, _, stderr := runCLI(t, nil, "run", "--config", mappedConfig(t, db, m, ""))
			if code != exitUsage || !strings.Contains(stderr, key) {
				t.Errorf("%s: code %d, stderr %q", key, code, stderr)
			}
		}
		// Integer status codes for a string status column are fine (they
		// are strings); strings for an integer column are not.
		a := copyMapping(*repotest.SchemaA.Mapping)
		a.Table, a.Columns = repotest.SchemaB.Mapping.Table, repotest.SchemaB.Mapping.Columns
		a.Columns.Status, a.AmountScale = "version", 2
		a.StatusValues["PAID"] = []string{"SUCCESS"}
		code, _, stderr := runCLI(t, nil, "run", "--config", mappedConfig(t, db, a, ""))
		if code != exitUsage || !strings.Contains(stderr, "orders.status_values.PAID") {
			t.Errorf("string status for an integer column: code %d, stderr %q", code, stderr)
		}
	})
}

func copyMapping(m repo.OrderMapping) repo.OrderMapping {
	sv := map[string][]string{}
	for k, v := range m.StatusValues {
		sv[k] = append([]string(nil), v...)
	}
	m.StatusValues = sv
	m.OtherTerminal = append([]string(nil), m.OtherTerminal...)
	return m
}

// TestBenchOnAMappedTable: recon bench with an orders mapping seeds an empty
// copy of the team's table in its scratch database and runs a full pass on
// it; the team's table is only read.
func TestBenchOnAMappedTable(t *testing.T) {
	repotestForEachDialect(t, repotest.SchemaB, func(t *testing.T, db repotest.DB) {
		before := teamDDL(t, db)
		cfg := mappedConfig(t, db, *repotest.SchemaB.Mapping, "")
		code, out, stderr := runCLI(t, nil, "bench", "--orders", "300", "--concurrency", "4", "--config", cfg)
		if code != 0 || !strings.Contains(out, "seeded a copy of pay_orders") || !strings.Contains(out, "300 paid, 0 errors") {
			t.Fatalf("bench: %d\n%s\n%s", code, out, stderr)
		}
		var n int64
		if err := db.Store.DB().Raw("SELECT COUNT(*) FROM pay_orders").Scan(&n).Error; err != nil || n != 0 || teamDDL(t, db) != before {
			t.Fatalf("the team's table was touched: %d rows, %v", n, err)
		}
	})
}

// TestDryRunOnAMappedTableWritesNothing: orders the team's service wrote
// (no bookkeeping rows yet) are planned by recon run --dry-run, which writes
// no row of recon's but its run record, then settled by recon run.
func TestDryRunOnAMappedTableWritesNothing(t *testing.T) {
	repotestForEachDialect(t, repotest.SchemaA, func(t *testing.T, db repotest.DB) {
		cfg := mappedConfig(t, db, *repotest.SchemaA.Mapping, "")
		now := time.Now().UTC().Truncate(time.Second)
		var orders []*recon.Order
		for i := 0; i < 5; i++ {
			o := repotest.Order(fmt.Sprintf("DRY%d", i), now)
			orders = append(orders, &o)
		}
		db.Seed(t, orders...)
		count := func() (n int64) {
			if err := db.Store.DB().Raw("SELECT COUNT(*) FROM recon_order_state").Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		if err := db.Store.DB().Exec("DELETE FROM recon_order_state").Error; err != nil {
			t.Fatal(err)
		}
		var res map[string]any
		code, out, stderr := runCLI(t, nil, "run", "--dry-run", "--output", "json", "--config", cfg)
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res["scanned"].(float64) != 5 || count() != 0 {
			t.Fatalf("dry run: %d %s %s; %d bookkeeping rows", code, out, stderr, count())
		}
		code, out, stderr = runCLI(t, nil, "run", "--output", "json", "--config", cfg)
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res["paid"].(float64) != 5 || count() != 5 {
			t.Fatalf("run: %d %s %s; %d bookkeeping rows", code, out, stderr, count())
		}
	})
}

// TestRunSettlesRefundsInJeepayTables: with orders and refunds mapping
// Jeepay's t_pay_order and t_refund_order, recon run settles a due refund
// in the team's refunds table (state 1 -> 2, through the guarded update),
// and neither table's definition changes.
func TestRunSettlesRefundsInJeepayTables(t *testing.T) {
	sc := repotest.SchemaJeepay
	repotestForEachDialect(t, sc, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		ddl := func() string {
			orders := teamDDL(t, db)
			db.Schema.Mapping = &repo.OrderMapping{Table: sc.Refunds.Table}
			defer func() { db.Schema.Mapping = sc.Mapping }()
			return orders + "\n" + teamDDL(t, db)
		}
		before := ddl()
		refunds, err := yaml.Marshal(map[string]any{"refunds": sc.Refunds})
		if err != nil {
			t.Fatal(err)
		}
		cfg := mappedConfig(t, db, *sc.Mapping, string(refunds))
		code, out, stderr := runCLI(t, nil, "migrate", "--print", "--config", cfg)
		if code != 0 || !strings.Contains(out, "CREATE INDEX `idx_t_refund_order_recon_due` ON `t_refund_order` (`state`, `created_at`)") {
			t.Fatalf("migrate --print: %d %s %s", code, out, stderr)
		}
		if code, out, stderr := runCLI(t, nil, "migrate", "--config", cfg); code != 0 {
			t.Fatalf("migrate: %d %s %s", code, out, stderr)
		}
		now := time.Now().UTC().Truncate(time.Second)
		o := repotest.Order("JP-PAY-1", now)
		o.Status = recon.StatusPaid
		db.Seed(t, &o)
		r := repotest.Refund("JP-REF-1", o, now)
		repotest.SeedRefunds(t, db.Store, &r)

		code, out, stderr = runCLI(t, nil, "run", "--output", "json", "--config", cfg)
		var res map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res["refunds_succeeded"] != 1.0 || res["errors"] != 0.0 {
			t.Fatalf("run: %d %s %s", code, out, stderr)
		}
		var state int
		if err := db.Store.DB().Raw("SELECT state FROM t_refund_order WHERE refund_order_id = ?", "JP-REF-1").Row().Scan(&state); err != nil || state != 2 {
			t.Fatalf("t_refund_order.state after run: %d, %v", state, err)
		}
		got, err := db.Store.GetRefundByNo(ctx, "JP-REF-1")
		if err != nil || got.Status != recon.RefundSucceeded || got.OrderNo != "JP-PAY-1" || got.SucceededAt == nil || got.NextQueryAt != nil {
			t.Fatalf("refund after run: %+v, %v", got, err)
		}
		if after := ddl(); after != before {
			t.Fatalf("the team's tables changed:\n%s\nwere\n%s", after, before)
		}
	})
}

// TestRefundMappingErrorsExitTwoNamingTheKey: a refunds mapping that cannot
// work is refused, naming the key, before connecting and against the live
// table.
func TestRefundMappingErrorsExitTwoNamingTheKey(t *testing.T) {
	sc := repotest.SchemaJeepay
	config := func(db repotest.DB, orders bool, mutate func(m *repo.RefundMapping)) string {
		m := *sc.Refunds
		m.StatusValues = map[string][]string{}
		for k, v := range sc.Refunds.StatusValues {
			m.StatusValues[k] = append([]string(nil), v...)
		}
		mutate(&m)
		b, err := yaml.Marshal(map[string]any{"refunds": m})
		if err != nil {
			t.Fatal(err)
		}
		if !orders {
			return writeConfig(t, fmt.Sprintf("database: {driver: %s, dsn: '%s'}\nchannels:\n  - {name: sim, kind: simulator}\n%s", db.Dialect, db.DSN, b))
		}
		return mappedConfig(t, db, *sc.Mapping, string(b))
	}
	nowhere := repotest.DB{Dialect: repo.MySQL, DSN: "u:p@tcp(127.0.0.1:1)/x"}
	if code, _, stderr := runCLI(t, nil, "run", "--config", config(nowhere, false, func(*repo.RefundMapping) {})); code != exitUsage || !strings.Contains(stderr, "refunds") {
		t.Errorf("refunds without orders: code %d, stderr %q", code, stderr)
	}
	for key, mutate := range map[string]func(m *repo.RefundMapping){
		"refunds.columns.order_id":          func(m *repo.RefundMapping) { m.Columns.OrderID = "" },
		"refunds.columns.refund_no":         func(m *repo.RefundMapping) { m.Columns.RefundNo = "" },
		"refunds.status_values.SUCCEEDED":   func(m *repo.RefundMapping) { delete(m.StatusValues, "SUCCEEDED") },
		"refunds.status_values.PAID":        func(m *repo.RefundMapping) { m.StatusValues["PAID"] = []string{"9"} },
		"refunds.status_values.FAILED":      func(m *repo.RefundMapping) { m.StatusValues["FAILED"] = []string{"2"} },
		"refunds.channel_values.x":          func(m *repo.RefundMapping) { m.ChannelValues = map[string]string{"x": "nope"} },
		"refunds.columns.channel_refund_id": func(m *repo.RefundMapping) { m.Columns.ChannelRefundID = "a b" },
	} {
		if code, _, stderr := runCLI(t, nil, "run", "--config", config(nowhere, true, mutate)); code != exitUsage || !strings.Contains(stderr, key) {
			t.Errorf("%s: code %d, stderr %q", key, code, stderr)
		}
	}
	db := repotest.NewSQLiteSchema(t, sc)
	for key, mutate := range map[string]func(m *repo.RefundMapping){
		"refunds.table":                func(m *repo.RefundMapping) { m.Table = "no_such_table" },
		"refunds.columns.succeeded_at": func(m *repo.RefundMapping) { m.Columns.SucceededAt = "refund_time" },
		"refunds.columns.amount":       func(m *repo.RefundMapping) { m.AmountScale = 2 }, // BIGINT holds fen
	} {
		if code, _, stderr := runCLI(t, nil, "run", "--config", config(db, true, mutate)); code != exitUsage || !strings.Contains(stderr, key) {
			t.Errorf("%s: code %d, stderr %q", key, code, stderr)
		}
	}
}
