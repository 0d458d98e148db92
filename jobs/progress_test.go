package jobs_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
)

func TestProgressLineAndTerminalDrawing(t *testing.T) {
	clock := recon.NewFakeClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	var out bytes.Buffer
	p := &jobs.Progress{Total: 100, Out: &out, Terminal: true, Clock: clock, Interval: time.Hour}
	stop := p.Start()
	for i := 0; i < 25; i++ {
		p.Processed(time.Millisecond)
	}
	p.Mismatch(recon.MismatchAmount)
	p.Lookup("sim", "error_transient", 0)
	clock.Advance(10 * time.Second)
	line := p.Line(clock.Now())
	for _, want := range []string{"25/100", "25.0%", "2.5/s", "ETA 30s", "mismatches 1", "errors 1"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	stop()
	if got := out.String(); !strings.HasPrefix(got, "\r\033[K[=======") || !strings.HasSuffix(got, "\n") {
		t.Fatalf("terminal output = %q", got)
	}
}
