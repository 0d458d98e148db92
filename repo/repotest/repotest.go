// Package repotest runs one test body against every supported database: a
// fresh SQLite file always, and a fresh MySQL/MariaDB database when
// RECON_TEST_MYSQL_DSN is set (the test is skipped, saying so, when it is
// not). It also has factories for test rows.
package repotest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// EnvMySQLDSN names the variable holding the MySQL DSN for tests, e.g.
// root@tcp(127.0.0.1:3306)/test. Each test gets its own database created next
// to the one named, and dropped afterwards.
const EnvMySQLDSN = "RECON_TEST_MYSQL_DSN"

// DB is one database a test runs against.
type DB struct {
	Dialect repo.Dialect
	DSN     string
	Store   *repo.Store
	// Schema is the orders table the store works on (Own unless the test
	// runs ForEachSchema).
	Schema Schema
	// Cluster is the Galera cluster the database is on (NewGalera); nil on
	// one server.
	Cluster *Cluster
}

// Open returns a new connection to the same database (a second process, in
// effect).
//
// On a cluster each Open connects to the next node, so that a test's
// processes run on different nodes.
func (d DB) Open(t testing.TB) *repo.Store {
	t.Helper()
	if d.Cluster != nil {
		return d.OpenNode(t, int(d.Cluster.next.Add(1)-1))
	}
	s, err := repo.Open(context.Background(), d.Dialect, d.DSN, repo.Options{Orders: d.Schema.Mapping, Refunds: d.Schema.Refunds})
	if err != nil {
		t.Fatalf("open %s: %v", d.Dialect, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ForEachDB runs body once per database as a subtest named after the
// dialect, each with a freshly migrated, empty database.
func ForEachDB(t *testing.T, body func(t *testing.T, db DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		body(t, NewSQLite(t))
	})
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		body(t, NewMySQL(t))
	})
}

// NewSQLite returns a migrated SQLite database in a temporary directory.
func NewSQLite(t testing.TB) DB {
	t.Helper()
	dsn := SQLiteFile(t)
	s, err := repo.Open(context.Background(), repo.SQLite, dsn, repo.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", repo.SQLite, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return DB{Dialect: repo.SQLite, DSN: dsn, Store: s, Schema: Own}
}

// SQLiteFile returns the path of a freshly migrated SQLite database file of
// the test's own, in its temporary directory: a copy of a database migrated
// once per test binary (parsing the migrations is slow under the race
// detector, and most tests make a database or two of their own).
func SQLiteFile(t testing.TB) string {
	t.Helper()
	sqliteTemplate.once.Do(func() { sqliteTemplate.data, sqliteTemplate.err = migratedSQLite() })
	if sqliteTemplate.err != nil {
		t.Fatalf("migrate %s: %v", repo.SQLite, sqliteTemplate.err)
	}
	p := filepath.Join(t.TempDir(), "recon.db")
	if err := os.WriteFile(p, sqliteTemplate.data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sqliteTemplate is the file SQLiteFile copies.
var sqliteTemplate struct {
	once sync.Once
	data []byte
	err  error
}

// migratedSQLite migrates a new SQLite database and returns its file,
// whole: closed, its write-ahead log merged into it.
func migratedSQLite() ([]byte, error) {
	dir, err := os.MkdirTemp("", "repotest-sqlite-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "recon.db")
	ctx := context.Background()
	s, err := repo.Open(ctx, repo.SQLite, p, repo.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := s.Migrate(ctx, time.Now()); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(p + "-wal"); err == nil && st.Size() > 0 {
		return nil, fmt.Errorf("%s-wal still holds %d bytes after close", p, st.Size())
	}
	return os.ReadFile(p)
}

// NewMySQL returns a migrated, empty MySQL database, or skips the test when
// RECON_TEST_MYSQL_DSN is not set.
func NewMySQL(t testing.TB) DB {
	t.Helper()
	base := os.Getenv(EnvMySQLDSN)
	if base == "" {
		t.Skipf("MySQL tests skipped: set %s (e.g. root@tcp(127.0.0.1:3306)/test) to run them", EnvMySQLDSN)
	}
	cfg, err := mysqldrv.ParseDSN(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvMySQLDSN, err)
	}
	cfg.DBName = createDatabase(t, base, cfg.DBName+"_t")
	return migrated(t, repo.MySQL, cfg.FormatDSN())
}

// createDatabase creates a database named prefix and a random suffix on the
// server of dsn, dropped when the test ends, and returns its name.
func createDatabase(t testing.TB, dsn, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	admin, err := gorm.Open(mysql.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	if err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4").Error; err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.Exec("DROP DATABASE IF EXISTS " + name).Error
		if sqlDB, err := admin.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return name
}

func migrated(t testing.TB, d repo.Dialect, dsn string) DB {
	t.Helper()
	ctx := context.Background()
	s, err := repo.Open(ctx, d, dsn, repo.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx, time.Now()); err != nil {
		t.Fatalf("migrate %s: %v", d, err)
	}
	return DB{Dialect: d, DSN: dsn, Store: s, Schema: Own}
}

// Order returns a due PENDING order created an hour before now; mutate the
// copy for the case at hand.
func Order(no string, now time.Time) recon.Order {
	return recon.Order{
		OrderNo: no, MerchantID: "m1", Channel: "sim", Amount: 1000, Currency: "CNY",
		Status: recon.StatusPending, CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour),
	}
}

// Seed inserts orders and fails the test on error.
func Seed(t testing.TB, s *repo.Store, orders ...*recon.Order) {
	t.Helper()
	vals := make([]recon.Order, len(orders))
	for i, o := range orders {
		vals[i] = *o
	}
	if err := s.InsertOrders(context.Background(), vals); err != nil {
		t.Fatal(err)
	}
	for i := range orders {
		orders[i].ID = vals[i].ID
	}
}

// ExpireLease makes lease name expired an hour ago by the database's
// clock, as if its holder had died that long ago, so a test need not wait
// out its ttl.
func ExpireLease(t testing.TB, s *repo.Store, name string) {
	t.Helper()
	now, err := s.Now(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Exec("UPDATE recon_leases SET expires_at = ? WHERE name = ?", now.Add(-time.Hour), name).Error; err != nil {
		t.Fatalf("expire lease %s: %v", name, err)
	}
}

// Mismatches writes mismatch rows as passes would have found them (their
// orders aside; order ids from 1 on, order numbers O-1, O-2, ...), for
// lists and totals of many mismatches.
func Mismatches(t testing.TB, s *repo.Store, rows []repo.MismatchRecord) {
	t.Helper()
	vals := make([]map[string]any, len(rows))
	for i, m := range rows {
		vals[i] = map[string]any{
			"order_id": i + 1, "order_no": fmt.Sprintf("O-%d", i+1), "merchant_id": m.MerchantID, "channel": m.Channel,
			"kind": string(m.Kind), "local_status": string(m.LocalStatus), "channel_status": string(m.ChannelStatus),
			"local_amount": m.LocalAmount, "channel_amount": m.ChannelAmount, "local_currency": m.LocalCurrency,
			"channel_currency": m.ChannelCurrency, "detail": m.Detail, "detected_at": m.DetectedAt, "last_seen_at": m.DetectedAt,
			"resolution": string(cmp.Or(m.Resolution, recon.ResolutionOpen)),
		}
	}
	if err := s.DB().Table("recon_mismatches").CreateInBatches(vals, 200).Error; err != nil {
		t.Fatalf("insert mismatches: %v", err)
	}
}
