package repo

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
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
	var applied []int
	if err := s.db.WithContext(ctx).Raw("SELECT version FROM schema_migrations").Scan(&applied).Error; err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	done := map[int]bool{}
	for _, v := range applied {
		done[v] = true
	}
	all, err := Migrations(s.dialect)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, m := range all {
		if !done[m.Version] {
			out = append(out, m)
		}
	}
	return out, nil
}

// Migrate applies every pending migration and returns those it applied. It is
// idempotent: statements are written to be re-runnable and each applied
// version is recorded.
func (s *Store) Migrate(ctx context.Context, now time.Time) ([]Migration, error) {
	pending, err := s.Pending(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range pending {
		for i, st := range m.Statements() {
			if err := s.db.WithContext(ctx).Exec(st).Error; err != nil {
				return nil, fmt.Errorf("migration %s, statement %d: %w", m.Name, i+1, err)
			}
		}
		ins := "INSERT OR IGNORE INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
		if s.dialect == MySQL {
			ins = "INSERT IGNORE INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
		}
		if err := s.db.WithContext(ctx).Exec(ins, m.Version, m.Name, now.UTC().Format(time.RFC3339)).Error; err != nil {
			return nil, fmt.Errorf("record migration %s: %w", m.Name, err)
		}
	}
	return pending, nil
}
