package repo

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

//go:embed migrations
var migrationFS embed.FS

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
	// Resumed counts, after Migrate, the statements an earlier, interrupted
	// migrate had applied already.
	Resumed int
}

// Statements splits the migration into single statements.
func (m Migration) Statements() []string {
	var out []string
	for _, st := range strings.Split(m.SQL, ";\n") {
		var lines []string
		for _, l := range strings.Split(st, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, l)
			}
		}
		if st := strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";"); st != "" {
			out = append(out, st)
		}
	}
	return out
}

// Migrations returns the migrations for a dialect in version order.
func Migrations(d Dialect) ([]Migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations for %s: %w", d, err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a version number", name)
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INT          NOT NULL PRIMARY KEY,
  name       VARCHAR(255) NOT NULL,
  applied_at VARCHAR(40)  NOT NULL
)`

// Pending returns the migrations not yet applied.
func (s *Store) Pending(ctx context.Context) ([]Migration, error) {
	if err := s.db.WithContext(ctx).Exec(migrationsTable).Error; err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	all, err := s.migrations()
	if err != nil {
		return nil, err
	}
	out, err := s.notApplied(ctx, all, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return out, nil
}

// notApplied returns the migrations of all whose versions the query of
// schema_migrations q does not return.
func (s *Store) notApplied(ctx context.Context, all []Migration, q string) ([]Migration, error) {
	var applied []int
	if err := s.db.WithContext(ctx).Raw(q).Scan(&applied).Error; err != nil {
		return nil, err
	}
	done := map[int]bool{}
	for _, v := range applied {
		done[v] = true
	}
	var out []Migration
	for _, m := range all {
		if !done[m.Version] {
			out = append(out, m)
		}
	}
	return out, nil
}

// ErrNotMigrated is CheckSchema's error for a database whose schema lacks
// migrations this recon has: `recon migrate` applies them.
var ErrNotMigrated = errors.New("the database is not migrated")

// CheckSchema reports, without writing anything, whether every migration
// this recon has is applied. A database with no schema_migrations table, or
// one missing some versions, is ErrNotMigrated, with the first missing
// migration named. Versions newer than this recon knows (a newer recon
// migrated the database first) are fine: migrations only add.
func (s *Store) CheckSchema(ctx context.Context) error {
	all, err := s.migrations()
	if err != nil {
		return err
	}
	if !s.db.WithContext(ctx).Migrator().HasTable("schema_migrations") {
		return fmt.Errorf("%w: it has no recon tables (no schema_migrations table; %d migrations to apply)", ErrNotMigrated, len(all))
	}
	missing, err := s.notApplied(ctx, all, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	if len(missing) > 0 && s.dialect == MySQL {
		// On a Galera cluster a node may not have applied yet the rows
		// that a migrate on another node has just committed: read again,
		// causally. (MySQL, which has neither the syntax nor the
		// variable, keeps the first answer.)
		if again, err := s.notApplied(ctx, all, "SET STATEMENT wsrep_sync_wait = 1 FOR SELECT version FROM schema_migrations"); err == nil {
			missing = again
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %d of this recon's %d migrations are not applied (the first: %s)", ErrNotMigrated, len(missing), len(all), missing[0].Name)
	}
	return nil
}

// Migrate applies every pending migration and returns those it applied. It is
// idempotent: each applied version is recorded, and skipped after. On SQLite
// a migration commits with its record, whole or not at all. A migrate
// stopped part way through a migration on MySQL (killed, or the connection
// lost: MySQL commits each schema change by itself) is resumed by the next:
// a statement of a pending migration that fails because what it creates is
// there already (or what it drops is gone) was applied by the migrate that
// stopped, and is counted in the migration's Resumed instead.
func (s *Store) Migrate(ctx context.Context, now time.Time) ([]Migration, error) {
	pending, err := s.Pending(ctx)
	if err != nil {
		return nil, err
	}
	for k := range pending {
		apply := func(db *gorm.DB) error { return s.apply(db, &pending[k], now) }
		var err error
		if s.dialect == SQLite {
			// SQLite's schema changes are transactional: a migration and
			// its record commit together or not at all.
			err = s.db.WithContext(ctx).Transaction(apply)
		} else {
			err = apply(s.db.WithContext(ctx))
		}
		if err != nil {
			return nil, err
		}
	}
	return pending, nil
}

// apply runs the statements of m and records its version.
func (s *Store) apply(db *gorm.DB, m *Migration, now time.Time) error {
	for i, st := range m.Statements() {
		if err := db.Exec(st).Error; err != nil {
			if s.alreadyApplied(err) {
				m.Resumed++
				continue
			}
			return fmt.Errorf("migration %s, statement %d: %w", m.Name, i+1, err)
		}
	}
	ins := "INSERT OR IGNORE INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
	if s.dialect == MySQL {
		ins = "INSERT IGNORE INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
	}
	if err := db.Exec(ins, m.Version, m.Name, now.UTC().Format(time.RFC3339)).Error; err != nil {
		return fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	return nil
}

// alreadyApplied tells the errors of a schema change that was made before:
// a table, column or index that exists already, or an index to drop that
// is gone (MySQL 1050, 1060, 1061, 1091; SQLite's messages for the same).
func (s *Store) alreadyApplied(err error) bool {
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1050, 1060, 1061, 1091:
			return true
		}
		return false
	}
	msg := err.Error()
	return s.dialect == SQLite && (strings.Contains(msg, "duplicate column name") || strings.Contains(msg, "already exists") ||
		strings.Contains(msg, "no such index"))
}

// migrations are the embedded migrations of the store's dialect.
func (s *Store) migrations() ([]Migration, error) {
	all, err := Migrations(s.dialect)
	return append(all, s.extraMigrations...), err
}
