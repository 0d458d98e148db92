package jobs_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
)

func TestReportQueryFilter(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	mf, desc, err := jobs.ReportQuery{From: "2026-11-20", To: "2026-11-21T00:00:00Z", Kind: "amount_mismatch",
		Channel: "alipay", Merchant: "m1", Resolution: "unresolved"}.Filter(shanghai, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !mf.From.Equal(time.Date(2026, 11, 19, 16, 0, 0, 0, time.UTC)) || !mf.To.Equal(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)) ||
		mf.Kind != recon.MismatchAmount || mf.Channel != "alipay" || mf.Merchant != "m1" || !mf.Unresolved || mf.Resolution != "" {
		t.Fatalf("filter %+v", mf)
	}
	if desc != "from=2026-11-20 to=2026-11-21T00:00:00Z kind=AMOUNT_MISMATCH resolution=UNRESOLVED channel=alipay merchant=m1" {
		t.Fatalf("desc %q", desc)
	}
	if mf, _, _ := (jobs.ReportQuery{From: "2026-11-20", Resolution: "resolved"}).Filter(nil, nil); !mf.From.Equal(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)) ||
		mf.Resolution != recon.ResolutionResolved || mf.Unresolved {
		t.Fatalf("UTC default: %+v", mf)
	}
	flag := func(f string) string { return "--" + f }
	for _, c := range []struct {
		q    jobs.ReportQuery
		want string
	}{
		{jobs.ReportQuery{Kind: "NOPE"}, "--kind: \"NOPE\" is not a mismatch kind"},
		{jobs.ReportQuery{Resolution: "maybe"}, "--resolution: must be OPEN, ACKNOWLEDGED, RESOLVED or UNRESOLVED"},
		{jobs.ReportQuery{From: "yesterday"}, "--from: \"yesterday\" is not a time"},
		{jobs.ReportQuery{From: "2026-11-21", To: "2026-11-20"}, "--from: (2026-11-21) must be before --to (2026-11-20)"},
	} {
		_, _, err := c.q.Filter(time.UTC, flag)
		var qe *jobs.QueryError
		if !errors.As(err, &qe) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.q, err, c.want)
		}
	}
}
