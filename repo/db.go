// Package repo is recon's storage: the GORM rows of every table, versioned SQL
// migrations, the keyset scan of due orders, Commit (the guarded update,
// outbox row, audit row and mismatch in one transaction), runs, mismatches,
// the notification outbox and leases. MySQL/MariaDB and SQLite sit behind the
// same API; times are stored in UTC with microsecond precision.
package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlitedrv "github.com/glebarez/go-sqlite"
	"github.com/glebarez/sqlite"
	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// DefaultIOTimeout bounds one read or write on a MySQL connection unless the
// DSN sets readTimeout / writeTimeout.
const DefaultIOTimeout = time.Minute

// Dialect names a supported database.
type Dialect string

// Supported dialects (config key database.driver).
const (
	MySQL  Dialect = "mysql"
	SQLite Dialect = "sqlite"
)

// Store is the database handle every repo operation hangs off.
type Store struct {
	db      *gorm.DB
	dialect Dialect
	// orders is the mapped orders table; nil for recon's own payment_orders.
	orders *orderMap
	// refunds is the mapped refunds table; nil for recon's own
	// refund_orders.
	refunds *orderMap
	// conflicts hears of retried conflicts (ObserveConflicts).
	conflicts conflictObserver
	// afterRefundSums, when set (tests only), is called in a refund
	// batch's transaction once the sums of its orders' refunds are read,
	// so that a test can hold two batches there at once.
	afterRefundSums func()
	// matchChunk, when set (tests only), replaces matchChunkLines'
	// default.
	matchChunk int
	// extraMigrations follow the embedded ones (tests of Migrate).
	extraMigrations []Migration
}

// Options tune the connection pool and how a SQLite file is opened.
type Options struct {
	MaxOpenConns int // 0: a default for the dialect
	// Orders maps an existing orders table (config key orders); nil uses
	// recon's own payment_orders. Open checks it against the live table
	// and returns a *MappingError naming the key when it cannot work.
	Orders *OrderMapping
	// Refunds maps an existing refunds table (config key refunds) beside a
	// mapped orders table; nil uses recon's own refund_orders.
	Refunds *RefundMapping
	// Existing refuses to create a SQLite file that does not exist
	// (ErrNoDatabase); only migrations should create one.
	Existing bool
	// ReadOnly opens an existing SQLite file read-only, so a read-only file
	// (or directory) can be read; writes fail. It implies Existing.
	ReadOnly bool
}

// ErrNoDatabase is returned by Open when the SQLite file, or its directory,
// does not exist.
var ErrNoDatabase = errors.New("no such SQLite database")

// ErrNoDirectory is the ErrNoDatabase of a file whose directory does not
// exist: not even migrations create it.
var ErrNoDirectory = fmt.Errorf("%w directory", ErrNoDatabase)

// NormalizeDSN checks dsn for driver and returns it with the settings recon
// relies on: for MySQL parseTime, UTC, a UTC session time zone and
// clientFoundRows off; for SQLite
// WAL, a busy timeout, immediate write transactions and foreign keys off.
func NormalizeDSN(driver Dialect, dsn string) (string, error) {
	switch driver {
	case MySQL:
		cfg, err := mysqldrv.ParseDSN(dsn)
		if err != nil {
			return "", fmt.Errorf("malformed MySQL DSN: %w", err)
		}
		if cfg.DBName == "" {
			return "", errors.New("MySQL DSN names no database (expected user:pass@tcp(host:3306)/dbname)")
		}
		cfg.ParseTime = true
		cfg.Loc = time.UTC
		// repo reads "inserted" and "changed" from affected-row counts;
		// clientFoundRows would report matched rows instead.
		cfg.ClientFoundRows = false
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["time_zone"] = "'+00:00'"
		// A database that stops answering without closing the connection
		// fails the statement instead of hanging the pass (until its lease
		// is lost). The DSN's own readTimeout/writeTimeout win.
		if cfg.ReadTimeout == 0 {
			cfg.ReadTimeout = DefaultIOTimeout
		}
		if cfg.WriteTimeout == 0 {
			cfg.WriteTimeout = DefaultIOTimeout
		}
		if cfg.Timeout == 0 {
			cfg.Timeout = 10 * time.Second
		}
		return cfg.FormatDSN(), nil
	case SQLite:
		if strings.TrimSpace(dsn) == "" {
			return "", errors.New("SQLite DSN is empty (expected a file path such as recon.db)")
		}
		path, query, _ := strings.Cut(dsn, "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			return "", fmt.Errorf("malformed SQLite DSN query: %w", err)
		}
		pragmas := strings.Join(q["_pragma"], ",")
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
			name, _, _ := strings.Cut(p, "(")
			if !strings.Contains(pragmas, name) {
				q.Add("_pragma", p)
			}
		}
		if q.Get("_txlock") == "" {
			q.Set("_txlock", "immediate")
		}
		return path + "?" + q.Encode(), nil
	}
	return "", fmt.Errorf("unknown database driver %q (want mysql or sqlite)", driver)
}

// Open connects to the database. It does not migrate.
func Open(ctx context.Context, driver Dialect, dsn string, opt Options) (*Store, error) {
	dsn, err := NormalizeDSN(driver, dsn)
	if err != nil {
		return nil, err
	}
	var dial gorm.Dialector
	if driver == MySQL {
		dial = mysql.Open(dsn)
	} else {
		if dsn, err = sqliteFile(dsn, opt); err != nil {
			return nil, err
		}
		dial = sqlite.Open(dsn)
	}
	db, err := gorm.Open(dial, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	})
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", driver, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", driver, err)
	}
	maxOpen := opt.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = 32
		if driver == SQLite {
			maxOpen = 4
		}
	}
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(maxOpen)
	sqlDB.SetConnMaxLifetime(30 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", driver, err)
	}
	if driver == SQLite && opt.ReadOnly && !strings.Contains(dsn, "immutable=1") {
		// A WAL database is read through its -shm file, which SQLite
		// cannot create in a directory we may not write to. With no -wal
		// holding unmerged changes (and no -shm, so no writer connected),
		// the file alone is the database: read it as immutable.
		var n int64
		err := sqlDB.QueryRowContext(pctx, "SELECT COUNT(*) FROM sqlite_master").Scan(&n)
		var serr *sqlitedrv.Error
		if errors.As(err, &serr) && serr.Code() == sqliteReadonlyDirectory {
			_ = sqlDB.Close()
			file := sqliteFilePath(dsn)
			if st, werr := os.Stat(file + "-wal"); werr == nil && st.Size() > 0 {
				return nil, fmt.Errorf("open %s read-only: its write-ahead log %s-wal cannot be read without write access to %s", file, file, filepath.Dir(file))
			}
			return Open(ctx, driver, dsn+"&immutable=1", opt)
		}
		if err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("read %s database: %w", driver, err)
		}
	}
	st := &Store{db: db, dialect: driver}
	if opt.Orders != nil {
		if st.orders, err = compileMapping(ctx, db, driver, *opt.Orders); err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
	}
	if opt.Refunds != nil {
		if opt.Orders == nil {
			_ = sqlDB.Close()
			return nil, &MappingError{Section: "refunds", Key: "table", Msg: "a mapped refunds table needs a mapped orders table (orders): its order_id column names the order there"}
		}
		if st.refunds, err = compileMapping(ctx, db, driver, opt.Refunds.asOrders()); err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
	}
	return st, nil
}

// sqliteReadonlyDirectory is SQLITE_READONLY_DIRECTORY: the directory of a
// WAL database is not writable, so its -shm file cannot be made.
const sqliteReadonlyDirectory = 1544

// Dialect returns the database kind.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB returns the underlying GORM handle, for tests and tools that seed data.
func (s *Store) DB() *gorm.DB { return s.db }

// Close closes the connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// sqliteFile checks the file of a normalized SQLite DSN as opt asks and
// returns the DSN to open. SQLite would create a missing file (a mistyped
// dsn becomes an empty database) and reports a missing directory as "out of
// memory (14)"; both are named here instead. An existing or read-only file is
// opened as a URI with mode=rw or mode=ro, so SQLite itself never creates it.
func sqliteFile(dsn string, opt Options) (string, error) {
	path, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("malformed SQLite DSN query: %w", err)
	}
	file, uri := sqliteFilePath(path), strings.HasPrefix(path, "file:")
	if file == "" || file == ":memory:" || q.Get("mode") == "memory" {
		return dsn, nil
	}
	if dir := filepath.Dir(file); dir != "." {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return "", fmt.Errorf("%w: the directory %s of %s does not exist", ErrNoDirectory, dir, shownPath(file))
		}
	}
	if !opt.Existing && !opt.ReadOnly {
		return dsn, nil
	}
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s does not exist", ErrNoDatabase, shownPath(file))
	}
	mode := "rw"
	if opt.ReadOnly {
		// Nothing may be written: no journal mode change, no write lock
		// taken when a transaction begins.
		mode = "ro"
		var keep []string
		for _, p := range q["_pragma"] {
			if !strings.HasPrefix(p, "journal_mode") && !strings.HasPrefix(p, "synchronous") {
				keep = append(keep, p)
			}
		}
		q["_pragma"] = keep
		q.Set("_txlock", "deferred")
	}
	q.Set("mode", mode)
	if !uri {
		path = "file:" + (&url.URL{Path: file}).EscapedPath()
	}
	return path + "?" + q.Encode(), nil
}

// shownPath is file as an error shows it: with its absolute path when it
// is relative, so the operator sees which directory was meant.
func shownPath(file string) string {
	if abs, err := filepath.Abs(file); err == nil && abs != file {
		return fmt.Sprintf("%s (%s)", file, abs)
	}
	return file
}

// sqliteFilePath is the file a SQLite DSN names (a path, or a file: URI).
func sqliteFilePath(dsn string) string {
	path, _, _ := strings.Cut(dsn, "?")
	if !strings.HasPrefix(path, "file:") {
		return path
	}
	path = strings.TrimPrefix(strings.TrimPrefix(path, "file:"), "//")
	if p, err := url.PathUnescape(path); err == nil {
		return p
	}
	return path
}

// dbTime is the one place times cross into the database: UTC, microseconds.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func dbTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := dbTime(*t)
	return &v
}

// truncate cuts s to n bytes at a rune boundary, for bounded text columns.
func truncate(s string, n int) string {
	// Text from outside (a channel's message) may not be valid UTF-8, which
	// MySQL refuses in a utf8mb4 column.
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}
