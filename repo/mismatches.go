package repo

import (
	"context"
	"database/sql"
	"fmt"
	"time"

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
	Limit      int
}

// ListMismatches returns the mismatches matching f, oldest detection first.
func (s *Store) ListMismatches(ctx context.Context, f MismatchFilter) ([]MismatchRecord, error) {
	q := s.db.WithContext(ctx).Model(&mismatchRow{})
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
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	var rows []mismatchRow
	if err := q.Order(s.at("detected_at") + ", id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list mismatches: %w", err)
	}
	out := make([]MismatchRecord, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain()
	}
	return out, nil
}
