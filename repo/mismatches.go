package repo

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// MismatchRecord is a recon_mismatches row.
type MismatchRecord struct {
	ID             int64
	RunID          int64
	OrderID        int64
	OrderNo        string
	MerchantID     string
	Channel        string
	DetectedAt     time.Time
	LastSeenAt     time.Time
	Occurrences    int
	Resolution     recon.Resolution
	ResolvedBy     string
	ResolutionNote string
	ResolvedAt     *time.Time
	recon.Mismatch
}

type mismatchRow struct {
	ID              int64
	RunID           sql.NullInt64
	OrderID         int64
	OrderNo         string
	MerchantID      string
	Channel         string
	Kind            string
	LocalStatus     string
	ChannelStatus   string
	LocalAmount     int64
	ChannelAmount   int64
	LocalCurrency   string
	ChannelCurrency string
	ChannelTxnID    string
	RefundNo        string
	Detail          string
	DetectedAt      time.Time
	LastSeenAt      time.Time
	Occurrences     int
	Resolution      string
	ResolvedBy      sql.NullString
	ResolutionNote  sql.NullString
	ResolvedAt      sql.NullTime
}

func (mismatchRow) TableName() string { return "recon_mismatches" }

func (r mismatchRow) toDomain() MismatchRecord {
	m := MismatchRecord{
		ID: r.ID, RunID: r.RunID.Int64, OrderID: r.OrderID, OrderNo: r.OrderNo, MerchantID: r.MerchantID,
		Channel: r.Channel, DetectedAt: r.DetectedAt.UTC(), LastSeenAt: r.LastSeenAt.UTC(),
		Occurrences: r.Occurrences, Resolution: recon.Resolution(r.Resolution),
		ResolvedBy: r.ResolvedBy.String, ResolutionNote: r.ResolutionNote.String,
		Mismatch: recon.Mismatch{
			Kind: recon.MismatchKind(r.Kind), LocalStatus: recon.Status(r.LocalStatus),
			ChannelStatus: recon.ChannelStatus(r.ChannelStatus), LocalAmount: r.LocalAmount,
			ChannelAmount: r.ChannelAmount, LocalCurrency: r.LocalCurrency,
			ChannelCurrency: r.ChannelCurrency, ChannelTxnID: r.ChannelTxnID, Detail: r.Detail,
			RefundNo: r.RefundNo,
		},
	}
	if r.ResolvedAt.Valid {
		t := r.ResolvedAt.Time.UTC()
		m.ResolvedAt = &t
	}
	return m
}

// MismatchFilter selects mismatches; zero fields select everything.
type MismatchFilter struct {
	From, To   time.Time // detected_at in [From, To)
	Kind       recon.MismatchKind
	Channel    string
	Merchant   string
	Resolution recon.Resolution
	// Unresolved keeps OPEN and ACKNOWLEDGED rows only (with Resolution
	// empty).
	Unresolved bool
	OrderID    int64
	RefundNo   string // a refund's mismatches only
	Limit      int
	// Offset skips that many rows of the list (a numbered page).
	Offset int
	// After starts the list after this row (a keyset page: an export reads
	// every row in pages without skipping over the ones before).
	After *MismatchRecord
	// Zone is the time zone whose days MismatchGroups counts by (nil:
	// UTC), so that a chart's days are the days a reader's filters name.
	// The list ignores it.
	Zone *time.Location
}

// mismatchWhere restricts q to the rows f selects.
func (s *Store) mismatchWhere(q *gorm.DB, f MismatchFilter) *gorm.DB {
	if !f.From.IsZero() {
		q = s.whereTime(q, "detected_at", ">=", f.From)
	}
	if !f.To.IsZero() {
		q = s.whereTime(q, "detected_at", "<", f.To)
	}
	if f.Kind != "" {
		q = q.Where("kind = ?", f.Kind)
	}
	if f.Channel != "" {
		q = q.Where("channel = ?", f.Channel)
	}
	if f.Merchant != "" {
		q = q.Where("merchant_id = ?", f.Merchant)
	}
	if f.Resolution != "" {
		q = q.Where("resolution = ?", f.Resolution)
	} else if f.Unresolved {
		q = q.Where("resolution <> ?", recon.ResolutionResolved)
	}
	if f.OrderID != 0 {
		q = q.Where("order_id = ?", f.OrderID)
	}
	if f.RefundNo != "" {
		q = q.Where("refund_no = ?", f.RefundNo)
	}
	return q
}

// ListMismatches returns the mismatches matching f, oldest detection first
// (then by id), f.Limit of them from f.Offset or after f.After.
func (s *Store) ListMismatches(ctx context.Context, f MismatchFilter) ([]MismatchRecord, error) {
	q := s.mismatchWhere(s.db.WithContext(ctx).Model(&mismatchRow{}), f)
	if f.After != nil {
		q = s.after(q, "detected_at", Cursor{at: f.After.DetectedAt, id: f.After.ID})
	} else {
		q = q.Order(s.at("detected_at") + ", id")
	}
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	if f.Offset > 0 {
		// The rows skipped are skipped in an index (the ids of the page
		// first, then their rows): a deep page does not read, or sort,
		// every whole row before it.
		page := q.Select("id").Offset(f.Offset)
		q = s.db.WithContext(ctx).Table("recon_mismatches AS m").Select("m.*").
			Joins("JOIN (?) AS p ON p.id = m.id", page).Order(s.at("m.detected_at") + ", m.id")
	}
	var rows []mismatchRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list mismatches: %w", err)
	}
	out := make([]MismatchRecord, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain()
	}
	return out, nil
}

// MismatchGroup is the mismatches of one kind, currencies, statuses,
// channel and UTC day of detection, counted, with their amounts summed. The
// rows of a group are also alike in the signs of their amounts and of the
// difference between them, so a sum of |differences| over the rows is the
// |difference| of the group's sums: totals of money at stake come out exact
// from groups.
type MismatchGroup struct {
	Kind            recon.MismatchKind
	LocalStatus     recon.Status
	ChannelStatus   recon.ChannelStatus
	LocalCurrency   string
	ChannelCurrency string
	Channel         string
	Day             string // YYYY-MM-DD in the filter's Zone
	Count           int
	// LocalAmount and ChannelAmount are exact sums (they can pass int64).
	LocalAmount, ChannelAmount *big.Int
}

type mismatchGroupRow struct {
	Kind            string
	LocalStatus     string
	ChannelStatus   string
	LocalCurrency   string
	ChannelCurrency string
	Channel         string
	Day             int64 // the bucket of detected_at (dayBuckets)
	N               int
	LocalAmountHi   string
	LocalAmountLo   string
	ChannelAmountHi string
	ChannelAmountLo string
}

// MismatchGroups returns the groups of the mismatches f selects (its Limit,
// Offset and After aside): what totals need, in as many rows as there are
// groups, however many mismatches there are.
func (s *Store) MismatchGroups(ctx context.Context, f MismatchFilter) ([]MismatchGroup, error) {
	cols := []struct {
		name string
		size int // bytes, in MySQL's key
	}{{"kind", 32}, {"local_status", 16}, {"channel_status", 16}, {"local_currency", 3}, {"channel_currency", 3}, {"channel", 0}}
	var keys []string
	for _, c := range cols {
		keys = append(keys, c.name)
	}
	zone := f.Zone
	if zone == nil {
		zone = time.UTC
	}
	size, shift := dayBuckets(zone, time.Now())
	day := fmt.Sprintf("(CAST(strftime('%%s', detected_at) AS INTEGER) + %d) / %d", shift, size)
	// SQLite's SUM fails on an int64 overflow; the sums of the quotient and
	// remainder by 2^32 do not, and give the exact sum. MySQL sums BIGINT
	// into a DECIMAL, exact already.
	sum := func(col string) string {
		return fmt.Sprintf("SUM(%[1]s / 4294967296) AS %[1]s_hi, SUM(%[1]s %% 4294967296) AS %[1]s_lo", col)
	}
	if s.dialect == MySQL {
		// MySQL groups in a temporary table whose keys are as wide as
		// the columns' utf8mb4 declarations (4 bytes a character); the
		// codes recon writes to these columns are ASCII, so their bytes
		// group the same way in a key a quarter as wide, and twice as
		// fast. The collation is utf8mb4_bin: bytes are what it compares.
		// The keys are selected as they are grouped (ONLY_FULL_GROUP_BY),
		// and lose their zero padding below.
		for i, c := range cols {
			keys[i] = "CAST(" + c.name + " AS BINARY)"
			if c.size > 0 {
				keys[i] = fmt.Sprintf("CAST(%s AS BINARY(%d))", c.name, c.size)
			}
		}
		day = fmt.Sprintf("(TIMESTAMPDIFF(SECOND, '1970-01-01', detected_at) + %d) DIV %d", shift, size)
		if size == 86400 {
			// The same days, a tenth of the totals' time sooner.
			day = fmt.Sprintf("TO_DAYS(detected_at + INTERVAL %d SECOND) - 719528", shift)
			if shift == 0 {
				day = "TO_DAYS(detected_at) - 719528"
			}
		}
		sum = func(col string) string { return fmt.Sprintf("0 AS %[1]s_hi, SUM(%[1]s) AS %[1]s_lo", col) }
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = keys[i] + " AS " + c.name
	}
	q := s.mismatchWhere(s.db.WithContext(ctx).Model(&mismatchRow{}), f).
		Select(strings.Join(sel, ", ") + ", " + day + " AS day, COUNT(*) AS n, " + sum("local_amount") + ", " + sum("channel_amount")).
		Group(strings.Join(keys, ", ") + ", " + day + ", local_amount >= 0, channel_amount >= 0, channel_amount >= local_amount").
		Order("NULL") // the groups in any order: no sort
	var rows []mismatchGroupRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("sum mismatches: %w", err)
	}
	out := make([]MismatchGroup, len(rows))
	for i, r := range rows {
		unpad := func(s string) string { return strings.TrimRight(s, "\x00") }
		g := MismatchGroup{Kind: recon.MismatchKind(unpad(r.Kind)), LocalStatus: recon.Status(unpad(r.LocalStatus)),
			ChannelStatus: recon.ChannelStatus(unpad(r.ChannelStatus)), LocalCurrency: unpad(r.LocalCurrency),
			ChannelCurrency: unpad(r.ChannelCurrency), Channel: r.Channel, Count: r.N,
			Day: time.Unix(r.Day*size-shift, 0).In(zone).Format(time.DateOnly)}
		var err error
		if g.LocalAmount, err = hiLo(r.LocalAmountHi, r.LocalAmountLo); err == nil {
			g.ChannelAmount, err = hiLo(r.ChannelAmountHi, r.ChannelAmountLo)
		}
		if err != nil {
			return nil, fmt.Errorf("sum mismatches: %w", err)
		}
		out[i] = g
	}
	return out, nil
}

// hiLo is hi * 2^32 + lo, each a decimal integer.
func hiLo(hi, lo string) (*big.Int, error) {
	h, ok := new(big.Int).SetString(hi, 10)
	l, ok2 := new(big.Int).SetString(lo, 10)
	if !ok || !ok2 {
		return nil, fmt.Errorf("sum %q %q is not an integer", hi, lo)
	}
	return h.Lsh(h, 32).Add(h, l), nil
}

// MerchantNames returns the names of the merchants ids name; ids without a
// merchants row are absent.
func (s *Store) MerchantNames(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []merchantRow
	if err := s.db.WithContext(ctx).Select("id, name").Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read merchant names: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r.Name
	}
	return out, nil
}
