package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

func TestSQLiteFileMustExistExceptForMigrate(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "recno.db")
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+typo+"'}\n"+
		"channels:\n  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n")
	for _, args := range [][]string{{"run"}, {"notify"}, {"report"}, {"mismatch", "list"}, {"mismatch", "ack", "1", "--by", "a"}, {"check", "X1"}} {
		code, _, stderr := runCLI(t, nil, append(args, "--config", cfg)...)
		if code != exitUsage || !strings.Contains(stderr, typo) || !strings.Contains(stderr, "recon migrate") {
			t.Errorf("%v on a missing file: code %d, stderr %q", args, code, stderr)
		}
		if _, err := os.Stat(typo); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%v created %s", args, typo)
		}
	}

	missingDir := filepath.Join(dir, "no-such-dir", "recon.db")
	cfg = writeConfig(t, "database: {driver: sqlite, dsn: '"+missingDir+"'}\n")
	for _, args := range [][]string{{"migrate"}, {"run"}, {"report"}} {
		code, _, stderr := runCLI(t, nil, append(args, "--config", cfg)...)
		if code != exitUsage || !strings.Contains(stderr, filepath.Dir(missingDir)) || !strings.Contains(stderr, "does not exist") ||
			strings.Contains(stderr, "out of memory") {
			t.Errorf("%v in a missing directory: code %d, stderr %q", args, code, stderr)
		}
	}
}

// TestReadingCommandsWorkOnAReadOnlyFile runs report, mismatch list and check
// as a user who may not write the database file or its directory (as
// nobody when the test runs as root, whom permissions do not stop).
func TestReadingCommandsWorkOnAReadOnlyFile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the recon binary")
	}
	// A read-only directory too: SQLite cannot create the -shm file a WAL
	// database is read through.
	for _, dirMode := range []os.FileMode{0o777, 0o555} {
		t.Run(dirMode.String(), func(t *testing.T) { readOnlyFile(t, dirMode) })
	}
}

func readOnlyFile(t *testing.T, dirMode os.FileMode) {
	created := time.Now().UTC().Add(-time.Hour)
	dbDir := t.TempDir()
	db := filepath.Join(dbDir, "r.db")
	cfgPath := writeConfig(t, "database: {driver: sqlite, dsn: '"+db+"'}\n"+
		"channels:\n  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n")
	if code, _, stderr := runCLI(t, nil, "migrate", "--config", cfgPath); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	store, err := repo.Open(context.Background(), repo.SQLite, db, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.InsertOrders(context.Background(), []recon.Order{cliOrder("ro-1", recon.StatusPending, created)}); err != nil {
		t.Fatal(err)
	}
	store.Close() // the last connection checkpoints the WAL and removes -wal and -shm

	// The binary, config and database where another user can read them.
	pub := t.TempDir()
	bin := filepath.Join(pub, "recon")
	copyFile(t, reconBinary(t), bin, 0o755)
	cfg := filepath.Join(pub, "recon.yaml")
	copyFile(t, cfgPath, cfg, 0o444)
	for _, p := range []string{pub, dbDir, filepath.Dir(pub), filepath.Dir(dbDir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dbDir, dirMode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dbDir, 0o755) })
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	reconAs := func(args ...string) (int, string) {
		cmd := exec.Command(bin, append(args, "--config", cfg)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		if os.Getuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatalf("recon %v: %v", args, err)
		}
		return 0, string(out)
	}
	for _, args := range [][]string{{"report", "--format", "csv"}, {"report", "--format", "json"}, {"mismatch", "list"}, {"check", "ro-1"}} {
		if code, out := reconAs(args...); code != 0 {
			t.Errorf("recon %v on a read-only file: exit %d\n%s", args, code, out)
		}
	}
	if code, out := reconAs("check", "ro-1"); !strings.Contains(out, "decision: TRANSITION to PAID") {
		t.Errorf("check: exit %d\n%s", code, out)
	}
	if code, out := reconAs("mismatch", "history", "1"); code != exitUsage || !strings.Contains(out, "mismatch 1") {
		t.Errorf("mismatch history of a missing mismatch on a read-only file: exit %d\n%s", code, out)
	}
	if code, _ := reconAs("run"); code == 0 {
		t.Errorf("run wrote to a read-only file")
	}
	after, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("the read-only file changed")
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err == nil {
		_, err = io.Copy(dst, src)
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}
