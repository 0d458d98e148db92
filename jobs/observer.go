package jobs

import (
	"time"

	"github.com/recon-dev/recon"
)

// Observer receives what passes do, for metrics. Implementations must be
// safe for concurrent use.
type Observer interface {
	// Lookup is one guarded lookup (retries included): its outcome is the
	// channel status, "bad_signature" or "error_<class>".
	Lookup(channel, outcome string, d time.Duration)
	Transition(to recon.Status)
	Mismatch(kind recon.MismatchKind)
	Conflict()
	RunFinished(kind, status string, d time.Duration, at time.Time)
	// Processed is the time one order took from lookup to commit.
	Processed(d time.Duration)
}
