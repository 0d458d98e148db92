package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "recon.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadConfigExitsTwoNamingTheKey(t *testing.T) {
	p := writeConfig(t, "reconcile:\n  grace_period: -1s\n")
	code, _, stderr := runCLI(t, nil, "run", "--config", p)
	if code != exitUsage || !strings.Contains(stderr, "reconcile.grace_period") || !strings.Contains(stderr, p) {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, nil, "run", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != exitUsage || !strings.Contains(stderr, "missing.yaml") {
		t.Fatalf("missing file: code %d, stderr %q", code, stderr)
	}
	code, _, _ = runCLI(t, nil, "run", "--shard", "4/4", "--config", writeConfig(t, ""))
	if code != exitUsage {
		t.Fatalf("bad shard: code %d", code)
	}
	code, _, _ = runCLI(t, nil, "run", "--no-such-flag")
	if code != exitUsage {
		t.Fatalf("unknown flag: code %d", code)
	}
}

func TestMigrateRunAndJSONOutput(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+filepath.Join(dir, "r.db")+"'}\n"+
		"channels:\n  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n")
	if code, out, stderr := runCLI(t, nil, "migrate", "--config", cfg); code != 0 || !strings.Contains(out, "applied 0001_init") {
		t.Fatalf("migrate: %d %q %q", code, out, stderr)
	}
	if code, out, _ := runCLI(t, nil, "migrate", "--config", cfg); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, nil, "migrate", "--print", "--config", cfg); code != 0 || !strings.Contains(out, "CREATE TABLE IF NOT EXISTS payment_orders") {
		t.Fatalf("migrate --print: %d %q", code, out)
	}
	code, out, stderr := runCLI(t, nil, "run", "--output", "json", "--config", cfg)
	if code != 0 {
		t.Fatalf("run: %d %s", code, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json output %q: %v", out, err)
	}
	for _, k := range []string{"run_id", "scanned", "paid", "failed", "closed", "rescheduled", "mismatches", "conflicts", "errors", "dry_run"} {
		if _, ok := res[k]; !ok {
			t.Fatalf("json output lacks %q: %s", k, out)
		}
	}
}

func TestDemoRunsOnAFreshMachine(t *testing.T) {
	dir := t.TempDir()
	t.Chdir("../..") // the shipped config.yaml
	code, out, stderr := runCLI(t, nil, "demo", "--dir", dir, "--orders", "60")
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, stderr)
	}
	for _, want := range []string{"seeded 60 PENDING orders", "callbacks before the pass: ", "scanned ", "orders by status", "PAID",
		"orders settled by their callback", "duplicate deliveries taken once", "orders recon's lookups settled, no callback ever came",
		// The seeded refunds, settled and reported.
		"refunds      5 scanned, 2 succeeded, 1 failed, 2 rescheduled", "DEMO-RF-SUCCEEDED    SUCCEEDED",
		"DEMO-RF-FAILED       FAILED", "DEMO-RF-PROCESSING   PENDING", "REFUND_ABNORMAL            DEMO-PAID03 refund DEMO-RF-ABNORMAL",
		"REFUND_MISMATCH            DEMO-PAID04 refund DEMO-RF-OVER"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	// Every duplicate delivery was taken once: as many counted as posted.
	if m := regexp.MustCompile(`duplicate deliveries taken once +(\d+) of (\d+)`).FindStringSubmatch(out); m == nil || m[1] != m[2] {
		t.Fatalf("duplicates: %v\n%s", m, out)
	}
	// The statement's line that the channel's lookup does not confirm: one
	// conflict, nothing moved, at any hour (the demo reconciles the days
	// its payments fall on: TestDemoStatementDays).
	if !regexp.MustCompile(`statement conflicts 1 \(not confirmed: nothing moved\)`).MatchString(out) ||
		!regexp.MustCompile(`STATEMENT_CONFLICT +1\n`).MatchString(out) {
		t.Fatalf("demo shows no statement conflict:\n%s", out)
	}
}

// TestDemoStatementDays: the demo reconciles the statements of the days its
// payments (the last two hours) fall on in statements.timezone, and the day
// after. Just after midnight in Shanghai that is the day before too; it
// was today and tomorrow only, and the demo then showed an empty
// statement.
func TestDemoStatementDays(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		now  time.Time
		want string
	}{
		{time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), "2026-12-06 2026-12-07"},             // 18:00 in Shanghai
		{time.Date(2026, 12, 6, 16, 2, 0, 0, time.UTC), "2026-12-06 2026-12-07 2026-12-08"},  // 00:02
		{time.Date(2026, 12, 6, 17, 59, 0, 0, time.UTC), "2026-12-06 2026-12-07 2026-12-08"}, // 01:59
		{time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC), "2026-12-07 2026-12-08"},             // 02:00
		{time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), "2027-01-01 2027-01-02"},            // 07:00, a new year
	} {
		if got := strings.Join(demoStatementDays(c.now, sh), " "); got != c.want {
			t.Errorf("at %s: %s, want %s", c.now, got, c.want)
		}
	}
}

func TestDemoRefusesADirectoryOfOtherFiles(t *testing.T) {
	t.Chdir("../..") // the shipped config.yaml
	dir := t.TempDir()
	mine := map[string]string{"demo.db": "not the demo's database", "report.csv": "finance's own report", "notes.txt": "keep me"}
	for name, body := range mine {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr := runCLI(t, nil, "demo", "--dir", dir, "--orders", "10")
	if code != exitUsage || !strings.Contains(stderr, dir) || !strings.Contains(stderr, "--force") {
		t.Fatalf("demo in a directory of other files: code %d, stderr %q", code, stderr)
	}
	for name, body := range mine {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != body {
			t.Fatalf("%s changed: %q %v", name, b, err)
		}
	}
	// A directory the demo wrote itself is reused without --force.
	demoDir := filepath.Join(t.TempDir(), "new")
	for i := range 2 {
		if code, _, stderr := runCLI(t, nil, "demo", "--dir", demoDir, "--orders", "10"); code != 0 {
			t.Fatalf("demo %d in its own directory: code %d, stderr %q", i, code, stderr)
		}
	}
	// --force writes the demo's files and leaves the others alone.
	if code, _, stderr := runCLI(t, nil, "demo", "--dir", dir, "--orders", "10", "--force"); code != 0 {
		t.Fatalf("demo --force: code %d, stderr %q", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "notes.txt")); err != nil || string(b) != "keep me" {
		t.Fatalf("notes.txt changed: %q %v", b, err)
	}
}

// TestCommandsRefuseADatabaseNotMigrated: a database without recon's
// tables, or without this recon's latest migration (a new binary deployed
// before `recon migrate` ran), stops every command but migrate with exit 2
// and a message that says what to run, instead of a missing-table error in
// the middle of a pass; `recon migrate` then lets them work.
func TestCommandsRefuseADatabaseNotMigrated(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ms, err := repo.Migrations(db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		latest := ms[len(ms)-1]
		cfg := writeConfig(t, fmt.Sprintf("database: {driver: %s, dsn: %q}\n", db.Dialect, db.DSN)+
			"channels:\n  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n")
		tables, err := db.Store.DB().Migrator().GetTables()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			undo []string
			want string
		}{
			{[]string{fmt.Sprintf("DELETE FROM schema_migrations WHERE version = %d", latest.Version)}, "(the first: " + latest.Name + ")"},
			{nil, "it has no recon tables"}, // every table dropped: a new database
		} {
			if c.undo == nil {
				for _, tb := range tables {
					if !strings.HasPrefix(tb, "sqlite_") {
						c.undo = append(c.undo, "DROP TABLE "+tb)
					}
				}
			}
			for _, q := range c.undo {
				if err := db.Store.DB().Exec(q).Error; err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{{"run"}, {"report"}, {"mismatch", "list"}, {"notify"}} {
				code, _, stderr := runCLI(t, nil, append(args, "--config", cfg)...)
				if code != exitUsage || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "run `recon migrate` first") {
					t.Errorf("%s, then %v: exit %d, stderr %q", c.undo, args, code, stderr)
				}
			}
			if code, _, stderr := runCLI(t, nil, "migrate", "--config", cfg); code != 0 {
				t.Fatalf("migrate after %s: exit %d %s", c.undo, code, stderr)
			}
			if code, _, stderr := runCLI(t, nil, "run", "--config", cfg); code != 0 {
				t.Fatalf("run after migrate: exit %d %s", code, stderr)
			}
		}
	})
}
