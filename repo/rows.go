package repo

import (
	"database/sql"
	"time"

	"github.com/recon-dev/recon"
)

// orderRow is a payment_orders row.
type orderRow struct {
	ID             int64
	OrderNo        string
	MerchantID     string
	Channel        string
	ChannelTxnID   sql.NullString
	Amount         int64
	Currency       string
	Status         string
	Version        int64
	QueryAttempts  int
	NextQueryAt    sql.NullTime
	LastQueryError sql.NullString
	CreatedAt      time.Time
	UpdatedAt      time.Time
	PaidAt         sql.NullTime
}

func (orderRow) TableName() string { return "payment_orders" }

func (r orderRow) toDomain() recon.Order {
	o := recon.Order{
		ID: r.ID, OrderNo: r.OrderNo, MerchantID: r.MerchantID, Channel: r.Channel,
		ChannelTxnID: r.ChannelTxnID.String, Amount: r.Amount, Currency: r.Currency,
		Status: recon.Status(r.Status), Version: r.Version, QueryAttempts: r.QueryAttempts,
		LastQueryError: r.LastQueryError.String,
		CreatedAt:      r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.NextQueryAt.Valid {
		t := r.NextQueryAt.Time.UTC()
		o.NextQueryAt = &t
	}
	if r.PaidAt.Valid {
		t := r.PaidAt.Time.UTC()
		o.PaidAt = &t
	}
	return o
}

func orderFromDomain(o recon.Order) orderRow {
	r := orderRow{
		ID: o.ID, OrderNo: o.OrderNo, MerchantID: o.MerchantID, Channel: o.Channel,
		ChannelTxnID: nullString(o.ChannelTxnID), Amount: o.Amount, Currency: o.Currency,
		Status: string(o.Status), Version: o.Version, QueryAttempts: o.QueryAttempts,
		LastQueryError: nullString(o.LastQueryError),
		CreatedAt:      dbTime(o.CreatedAt), UpdatedAt: dbTime(o.UpdatedAt),
		NextQueryAt: nullTime(o.NextQueryAt), PaidAt: nullTime(o.PaidAt),
	}
	if r.Status == "" {
		r.Status = string(recon.StatusPending)
	}
	if o.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	return r
}

// merchantRow is a merchants row.
type merchantRow struct {
	ID           string
	Name         string
	NotifyURL    string
	NotifySecret string
	CreatedAt    time.Time
}

func (merchantRow) TableName() string { return "merchants" }

// Merchant is a merchant as recon knows it.
type Merchant struct {
	ID           string
	Name         string
	NotifyURL    string
	NotifySecret string `json:"-"`
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullTime(t *time.Time) sql.NullTime {
	if t == nil {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: dbTime(*t), Valid: true}
}
