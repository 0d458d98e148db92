package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// ReportQuery is a selection of mismatches as people write it: the flags of
// `recon report` and `recon mismatch list`, the query parameters of the
// console's list and CSV export. Both go through Filter, so the same words
// select the same rows.
type ReportQuery struct {
	From, To   string // RFC 3339, or a date (midnight in the location given to Filter)
	Kind       string
	Channel    string
	Merchant   string
	Resolution string // OPEN, ACKNOWLEDGED, RESOLVED, or UNRESOLVED (OPEN and ACKNOWLEDGED)
	Refund     string // one refund's mismatches, by its refund number
}

// ResolutionUnresolved selects OPEN and ACKNOWLEDGED mismatches.
const ResolutionUnresolved = "UNRESOLVED"

// QueryError names the field of a ReportQuery that is wrong.
type QueryError struct {
	Field string
	Msg   string
}

func (e *QueryError) Error() string { return e.Field + ": " + e.Msg }

// Filter turns q into a repository filter and a short description of it
// ("kind=AMOUNT_MISMATCH from=2026-11-20"). Dates are midnight in loc (nil:
// UTC), and the totals' days are days in loc too. Errors are *QueryError,
// naming the field as name(field) spells it (e.g. "--kind" for the CLI).
func (q ReportQuery) Filter(loc *time.Location, name func(string) string) (repo.MismatchFilter, string, error) {
	if loc == nil {
		loc = time.UTC
	}
	if name == nil {
		name = func(s string) string { return s }
	}
	bad := func(field, format string, args ...any) error {
		return &QueryError{Field: name(field), Msg: fmt.Sprintf(format, args...)}
	}
	mf := repo.MismatchFilter{Zone: loc}
	var desc []string
	var err error
	if q.From != "" {
		if mf.From, err = parseQueryTime(q.From, loc); err != nil {
			return mf, "", bad("from", "%q %v", q.From, err)
		}
		desc = append(desc, "from="+q.From)
	}
	if q.To != "" {
		if mf.To, err = parseQueryTime(q.To, loc); err != nil {
			return mf, "", bad("to", "%q %v", q.To, err)
		}
		desc = append(desc, "to="+q.To)
	}
	if !mf.From.IsZero() && !mf.To.IsZero() && !mf.From.Before(mf.To) {
		return mf, "", bad("from", "(%s) must be before %s (%s)", q.From, name("to"), q.To)
	}
	if q.Kind != "" {
		k := recon.MismatchKind(strings.ToUpper(q.Kind))
		ok := false
		for _, v := range recon.MismatchKinds {
			ok = ok || v == k
		}
		if !ok {
			return mf, "", bad("kind", "%q is not a mismatch kind (one of %v)", q.Kind, recon.MismatchKinds)
		}
		mf.Kind = k
		desc = append(desc, "kind="+string(k))
	}
	if q.Resolution != "" {
		r := strings.ToUpper(q.Resolution)
		switch recon.Resolution(r) {
		case recon.ResolutionOpen, recon.ResolutionAcknowledged, recon.ResolutionResolved:
			mf.Resolution = recon.Resolution(r)
		default:
			if r != ResolutionUnresolved {
				return mf, "", bad("resolution", "must be OPEN, ACKNOWLEDGED, RESOLVED or UNRESOLVED, not %q", q.Resolution)
			}
			mf.Unresolved = true
		}
		desc = append(desc, "resolution="+r)
	}
	if q.Channel != "" {
		mf.Channel = q.Channel
		desc = append(desc, "channel="+q.Channel)
	}
	if q.Merchant != "" {
		mf.Merchant = q.Merchant
		desc = append(desc, "merchant="+q.Merchant)
	}
	if q.Refund != "" {
		mf.RefundNo = q.Refund
		desc = append(desc, "refund="+q.Refund)
	}
	return mf, strings.Join(desc, " "), nil
}

func parseQueryTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("is not a time (use RFC 3339, e.g. 2026-11-23T00:00:00Z, or 2026-11-23)")
}

// ReportStore is what BuildReport reads.
type ReportStore interface {
	ListMismatches(ctx context.Context, f repo.MismatchFilter) ([]repo.MismatchRecord, error)
	GetMerchant(ctx context.Context, id string) (repo.Merchant, error)
}

// BuildReport reads the mismatches mf selects and their merchants' names
// into a Report generated at now; desc describes the filter.
func BuildReport(ctx context.Context, store ReportStore, mf repo.MismatchFilter, desc string, now time.Time) (Report, error) {
	rows, err := store.ListMismatches(ctx, mf)
	if err != nil {
		return Report{}, err
	}
	names := map[string]string{}
	for _, m := range rows {
		if _, ok := names[m.MerchantID]; ok {
			continue
		}
		names[m.MerchantID] = ""
		if mer, err := store.GetMerchant(ctx, m.MerchantID); err == nil {
			names[m.MerchantID] = mer.Name
		} else if !errors.Is(err, recon.ErrNotFound) {
			return Report{}, err
		}
	}
	return Report{Title: "recon mismatch report", GeneratedAt: now, Filter: desc, Rows: rows, MerchantNames: names}, nil
}

// ExportStore is what ExportCSV reads.
type ExportStore interface {
	ListMismatches(ctx context.Context, f repo.MismatchFilter) ([]repo.MismatchRecord, error)
	MerchantNames(ctx context.Context, ids []string) (map[string]string, error)
}

// ExportCSV writes the CSV report (CSVWriter) of the mismatches mf selects
// to w, reading them page rows at a time in keyset order, and calls flushed
// after each page is out: an export of any size holds one page, and the
// reader gets rows as they are read. Nothing is written to w when the first
// page cannot be read.
func ExportCSV(ctx context.Context, store ExportStore, mf repo.MismatchFilter, page int, w io.Writer, flushed func()) error {
	if page < 1 {
		page = 1000
	}
	mf.Limit, mf.Offset, mf.After = page, 0, nil
	names := map[string]string{}
	var cw *CSVWriter
	for {
		rows, err := store.ListMismatches(ctx, mf)
		if err != nil {
			return err
		}
		var unknown []string
		for _, m := range rows {
			if _, ok := names[m.MerchantID]; !ok {
				names[m.MerchantID] = ""
				unknown = append(unknown, m.MerchantID)
			}
		}
		found, err := store.MerchantNames(ctx, unknown)
		if err != nil {
			return err
		}
		maps.Copy(names, found)
		if cw == nil {
			if cw, err = NewCSVWriter(w); err != nil {
				return err
			}
		}
		for _, m := range rows {
			if err := cw.Write(m, names[m.MerchantID]); err != nil {
				return err
			}
		}
		if err := cw.Flush(); err != nil {
			return err
		}
		flushed()
		if len(rows) < page {
			return nil
		}
		mf.After = &rows[len(rows)-1]
	}
}
