package jobs_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

// Totals are exact however large the amounts: 10,000 mismatches of 10^15
// minor units each, and one stored value near 2^63, add up without
// wrapping to a negative number.
func TestReportTotalsDoNotOverflow(t *testing.T) {
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var rows []repo.MismatchRecord
	for i := range 10000 {
		rows = append(rows, repo.MismatchRecord{ID: int64(i + 1), OrderNo: "big", Channel: "sim", DetectedAt: at,
			Mismatch: recon.Mismatch{Kind: recon.MismatchAmount, LocalStatus: recon.StatusPending, ChannelStatus: recon.ChannelPaid,
				LocalAmount: 1_000_000_000_000_000, ChannelAmount: 0, LocalCurrency: "CNY", ChannelCurrency: "CNY"}})
	}
	rows = append(rows, repo.MismatchRecord{ID: 10001, OrderNo: "huge", Channel: "sim", DetectedAt: at,
		Mismatch: recon.Mismatch{Kind: recon.MismatchAmount, LocalStatus: recon.StatusPending, ChannelStatus: recon.ChannelPaid,
			LocalAmount: -1, ChannelAmount: math.MaxInt64, LocalCurrency: "CNY", ChannelCurrency: "CNY"}})
	r := jobs.Report{Title: "t", GeneratedAt: at, Rows: rows}
	tot := r.Totals()
	// 10^19 + 2^63 = 19223372036854775808 minor units.
	const want, wantMajor = "19223372036854775808", "192233720368547758.08"
	if len(tot.AtStake) != 1 || tot.AtStake[0].AbsDifference.String() != want || tot.AtStake[0].AbsDifferenceMajor != wantMajor {
		t.Fatalf("at stake = %+v, want %s (%s)", tot.AtStake, want, wantMajor)
	}
	if len(tot.ByKind) != 1 || tot.ByKind[0].AbsDifferenceMajor != wantMajor {
		t.Fatalf("by kind = %+v", tot.ByKind)
	}
	// The local amounts: 10^19 - 1.
	if got := tot.AtStake[0].LocalAmount.String(); got != "9999999999999999999" {
		t.Fatalf("local amount = %s", got)
	}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Totals struct {
			AtStake []struct {
				AbsDifference json.Number `json:"abs_difference"`
			} `json:"at_stake"`
		} `json:"totals"`
	}
	dec := json.NewDecoder(&b)
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || len(doc.Totals.AtStake) != 1 || doc.Totals.AtStake[0].AbsDifference.String() != want {
		t.Fatalf("JSON at stake = %+v, %v", doc.Totals.AtStake, err)
	}
	b.Reset()
	if err := r.WriteHTML(&b); err != nil || !strings.Contains(b.String(), wantMajor+" CNY") {
		t.Fatalf("HTML lacks the total %s CNY (%v)", wantMajor, err)
	}
}
