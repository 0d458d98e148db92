package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/recon-dev/recon/jobs"
)

func TestBuildFromBuildInfo(t *testing.T) {
	vcs := func(modified string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123abcd"},
			{Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: modified}}}
	}
	for _, tc := range []struct {
		name            string
		info            *debug.BuildInfo
		ver, commit, at string
		want            jobs.Build
	}{
		{"build info", vcs("false"), "", "", "",
			jobs.Build{Version: "v1.2.0", Commit: "0123abcd", Time: "2026-11-30T10:00:00Z", GoVersion: "go1.99.1"}},
		{"modified tree", vcs("true"), "", "", "",
			jobs.Build{Version: "v1.2.0", Commit: "0123abcd-modified", Time: "2026-11-30T10:00:00Z", GoVersion: "go1.99.1"}},
		{"link-time values win", vcs("false"), "v2.0.0", "feedbeef", "2026-12-01T00:00:00Z",
			jobs.Build{Version: "v2.0.0", Commit: "feedbeef", Time: "2026-12-01T00:00:00Z", GoVersion: "go1.99.1"}},
		{"no build info", nil, "", "", "", jobs.Build{Version: "(devel)", GoVersion: runtime.Version()}},
	} {
		if got := buildFrom(tc.info, tc.ver, tc.commit, tc.at); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestVersionCommandAndFlag(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, stderr := runCLI(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "recon ") || !strings.Contains(out, "commit") ||
			!strings.Contains(out, "build time") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("recon %v: code %d, stdout %q, stderr %q", args, code, out, stderr)
		}
	}
	code, out, _ := runCLI(t, nil, "version", "--output", "json")
	var b jobs.Build
	if err := json.Unmarshal([]byte(out), &b); code != 0 || err != nil || b.GoVersion != runtime.Version() || b.Version == "" {
		t.Errorf("recon version --output json: code %d, %q (%v)", code, out, err)
	}
}

// TestVersionSetAtLinkTime builds recon with the -X flags deployments/Dockerfile uses and
// checks that the values it links in are what recon reports.
func TestVersionSetAtLinkTime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "recon")
	ld := "-s -w -X main.version=v9.8.7 -X main.commit=c0ffee -X main.buildTime=2026-12-01T12:00:00Z"
	if out, err := exec.Command("go", "build", "-ldflags="+ld, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--output", "json").Output()
	var b jobs.Build
	if err == nil {
		err = json.Unmarshal(out, &b)
	}
	want := jobs.Build{Version: "v9.8.7", Commit: "c0ffee", Time: "2026-12-01T12:00:00Z", GoVersion: runtime.Version()}
	if err != nil || b != want {
		t.Fatalf("version: %+v (%v), want %+v", b, err, want)
	}
}

func TestPassFinishedNamesTheBuild(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+filepath.Join(dir, "r.db")+"'}\n"+
		"channels:\n  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n")
	if code, _, stderr := runCLI(t, nil, "migrate", "--config", cfg); code != 0 {
		t.Fatalf("migrate: %d %s", code, stderr)
	}
	code, _, stderr := runCLI(t, nil, "run", "--config", cfg)
	if code != 0 {
		t.Fatalf("run: %d %s", code, stderr)
	}
	found := false
	for sc := bufio.NewScanner(strings.NewReader(stderr)); sc.Scan(); {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != "pass finished" {
			continue
		}
		found = true
		if v, _ := line["version"].(string); v != thisBuild().Version {
			t.Errorf("pass finished: version %v, want %q: %s", line["version"], thisBuild().Version, sc.Text())
		}
		if _, ok := line["commit"]; !ok {
			t.Errorf("pass finished names no commit: %s", sc.Text())
		}
	}
	if !found {
		t.Fatalf("no pass finished line:\n%s", stderr)
	}
}

func TestBuildInfoMetric(t *testing.T) {
	fams, err := newMetrics().Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	b := thisBuild()
	for _, f := range fams {
		if f.GetName() != "recon_build_info" {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if got["version"] == b.Version && got["commit"] == b.Commit && got["go_version"] == b.GoVersion && m.GetGauge().GetValue() == 1 {
				return
			}
		}
	}
	t.Fatalf("no recon_build_info{version=%q,commit=%q,go_version=%q} 1", b.Version, b.Commit, b.GoVersion)
}
