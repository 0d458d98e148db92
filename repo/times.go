package repo

import (
	"time"

	"gorm.io/gorm"
)

// at renders x, a time column or a ? placeholder, so that it compares and
// sorts as an instant. MySQL's DATETIME columns already do, and stay bare so
// that their indexes serve ranges. SQLite has no time type: a column holds
// the text its writer chose (recon's '2026-12-01 19:40:40.5+00:00', the
// schema's DEFAULT CURRENT_TIMESTAMP '2026-12-01 19:40:40', another
// service's ISO-8601 '2026-12-01T19:40:40Z'), and comparing different forms
// as text is wrong: 'T' sorts after ' ', and '19:40:40' before
// '19:40:40+00:00'. julianday() reads every form as the same instant, to
// the millisecond; the SQLite indexes on these expressions (migration 12)
// keep the scans ranged. Every time comparison and time ORDER BY in repo
// goes through at, on both sides.
func (s *Store) at(x string) string {
	if s.dialect == SQLite {
		return "julianday(" + x + ")"
	}
	return x
}

// cmpAt renders "col op ?" comparing instants to the millisecond (on
// SQLite), for keyset cursors, whose value is always read back from the row.
func (s *Store) cmpAt(col, op string) string { return s.at(col) + " " + op + " " + s.at("?") }

// timeCmp renders "col op t" (op one of < <= > >=) and its arguments. On
// SQLite, two instants in the same millisecond are told apart by their text
// when the column holds recon's own form (exact to the microsecond, and
// ordered as text); a row in another form is equal to t there.
func (s *Store) timeCmp(col, op string, t time.Time) (string, []any) {
	t = dbTime(t)
	if s.dialect != SQLite {
		return col + " " + op + " ?", []any{t}
	}
	wide, strict := "<=", "<"
	if op == ">" || op == ">=" {
		wide, strict = ">=", ">"
	}
	own := "(substr(" + col + ", 11, 1) = ' ' AND " + col + " LIKE '%+00:00')"
	tie := "(" + own + " AND " + col + " " + op + " ?)"
	if op == wide {
		tie = "(NOT " + own + " OR " + col + " " + op + " ?)"
	}
	return "(" + s.cmpAt(col, wide) + " AND (" + s.cmpAt(col, strict) + " OR " + tie + "))", []any{t, t, t}
}

// whereTime adds "col op t" to q.
func (s *Store) whereTime(q *gorm.DB, col, op string, t time.Time) *gorm.DB {
	cond, args := s.timeCmp(col, op, t)
	return q.Where(cond, args...)
}

// dayBuckets cuts time into buckets that each lie within one day of zone,
// for grouping by day in SQL: the bucket of an instant t (Unix seconds) is
// (t + shift) / size, and bucket n starts at n*size - shift. A zone with
// one offset (UTC, Asia/Shanghai) has days for buckets; a zone with
// daylight saving time has hours (or quarter hours, for offsets such as
// +05:45), which the caller folds into days in Go. The offsets are those
// of the two years around now.
func dayBuckets(zone *time.Location, now time.Time) (size, shift int64) {
	_, first := now.In(zone).Zone()
	fixed, hours := true, first%3600 == 0
	for m := -12; m <= 12; m++ {
		_, off := now.AddDate(0, m, 0).In(zone).Zone()
		fixed = fixed && off == first
		hours = hours && off%3600 == 0
	}
	switch {
	case fixed:
		return 86400, int64(first)
	case hours:
		return 3600, 0
	}
	return 900, 0
}
