package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// reconBinary builds cmd/recon once per test binary and returns its path,
// for tests that run recon as a separate process (leases, kills, signals).
func reconBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "recon-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "recon")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = err
			t.Logf("go build: %s", out)
		}
	})
	if binErr != nil {
		t.Fatalf("build recon: %v", binErr)
	}
	return binPath
}

// proc is a recon child process with its output captured.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// startRecon starts the recon binary with args, the given environment added
// to the test's own.
func startRecon(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(reconBinary(t), args...)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start recon %v: %v", args, err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// wait waits for the process and returns its exit code.
func (p *proc) wait() int {
	err := p.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestReconBinaryBuildsAndPrintsHelp(t *testing.T) {
	p := startRecon(t, nil, "--help")
	if code := p.wait(); code != 0 || !bytes.Contains(p.stdout.Bytes(), []byte("backfill")) {
		t.Fatalf("recon --help: %d\n%s%s", code, p.stdout.String(), p.stderr.String())
	}
}
