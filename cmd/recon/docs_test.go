package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeTestCommandNeedsNoCompiler keeps the README's test command
// runnable on a fresh machine (the race detector needs cgo, hence gcc) and
// .ci/run running that same command with -race, as the README says.
func TestReadmeTestCommandNeedsNoCompiler(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(readme), "## The two commands")
	block, _, _ := strings.Cut(rest, "\n## ")
	var cmd string
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "    ") && strings.Contains(line, "go test") {
			cmd, _, _ = strings.Cut(strings.TrimSpace(line), "#")
			cmd = strings.TrimSpace(cmd)
			break
		}
	}
	if cmd != "go vet ./... && go test ./..." {
		t.Errorf("README's test command is %q, want %q (no -race: it needs a C compiler)", cmd, "go vet ./... && go test ./...")
	}
	if !regexp.MustCompile(`\.ci/run[^.]*-race`).MatchString(block) {
		t.Errorf("README does not say that .ci/run adds -race:\n%s", block)
	}
	for _, want := range []string{"\ngo vet ./...\n", "\ngo test -race "} {
		if !strings.Contains(string(ci), want) {
			t.Errorf(".ci/run does not run %q", strings.TrimSpace(want))
		}
	}
}
