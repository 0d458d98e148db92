package jobs

import (
	"fmt"
	"time"

	"github.com/recon-dev/recon"
)

// Chart is the per-day stacked bar chart of a report, laid out in SVG
// coordinates (Width x Height): bars, labels, the axis and a legend of the
// kinds shown, with their colours.
type Chart = chart

// DayChart lays out a report's per-day counts (Totals.PerDay) as the HTML
// report draws them, for other pages that show the same chart.
func DayChart(days []DayCount) Chart { return buildChart(days) }

// DescribeOutcome says in one line what a decision would do, for people
// (`recon check`, the console's "check now").
func DescribeOutcome(out recon.Outcome) string {
	switch out.Action {
	case recon.ActionTransition:
		return fmt.Sprintf("%s to %s, notify %s", out.Action, out.To, out.Event)
	case recon.ActionHold, recon.ActionReport:
		return fmt.Sprintf("%s: mismatch %s: %s", out.Action, out.Mismatch.Kind, out.Mismatch.Detail)
	case recon.ActionReschedule:
		s := fmt.Sprintf("%s: query again at %s", out.Action, formatTimeP(out.NextQueryAt))
		if out.QueryError != "" {
			s += " (lookup failed: " + out.QueryError + ")"
		}
		if out.Mismatch != nil { // a refund's ABNORMAL answer
			s += fmt.Sprintf("; mismatch %s: %s", out.Mismatch.Kind, out.Mismatch.Detail)
		}
		return s
	case recon.ActionClose:
		return "CLOSE: expired; close at the channel, look up again and decide"
	case recon.ActionNone:
		return "NONE: local state agrees with the channel"
	}
	return string(out.Action)
}

// DescribeRefundOutcome says in one line what a pass does with a refund.
func DescribeRefundOutcome(out recon.RefundOutcome) string {
	if out.Action == recon.ActionNone {
		return "NONE: local state agrees with the channel"
	}
	return DescribeOutcome(recon.Outcome{Action: out.Action, To: recon.Status(out.To), Event: out.Event,
		Mismatch: out.Mismatch, NextQueryAt: out.NextQueryAt, QueryError: out.QueryError})
}

func formatTimeP(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
