package repo

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/recon-dev/recon"
)

// Transition is an order_transitions (audit) row.
type Transition struct {
	ID          int64
	OrderID     int64
	FromStatus  recon.Status
	ToStatus    recon.Status
	FromVersion int64
	ToVersion   int64
	Source      string
	RunID       int64
	CreatedAt   time.Time
}

type transitionRow struct {
	ID          int64
	OrderID     int64
	FromStatus  string
	ToStatus    string
	FromVersion int64
	ToVersion   int64
	Source      string
	RunID       sql.NullInt64
	CreatedAt   time.Time
}

func (transitionRow) TableName() string { return "order_transitions" }

// Transitions returns the audit trail of one order, oldest first.
func (s *Store) Transitions(ctx context.Context, orderID int64) ([]Transition, error) {
	return s.transitions(ctx, "order_transitions", "order_id", "order", orderID)
}

// RefundTransitions returns the audit trail of one refund
// (refund_transitions), oldest first; OrderID holds the refund's id.
func (s *Store) RefundTransitions(ctx context.Context, refundID int64) ([]Transition, error) {
	return s.transitions(ctx, "refund_transitions", "refund_id", "refund", refundID)
}

func (s *Store) transitions(ctx context.Context, table, col, what string, id int64) ([]Transition, error) {
	var rows []transitionRow
	if err := s.db.WithContext(ctx).Table(table).Select("id, "+col+" AS order_id, from_status, to_status, from_version, to_version, source, run_id, created_at").
		Where(col+" = ?", id).Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read transitions of %s %d: %w", what, id, err)
	}
	out := make([]Transition, len(rows))
	for i, r := range rows {
		out[i] = Transition{ID: r.ID, OrderID: r.OrderID, FromStatus: recon.Status(r.FromStatus),
			ToStatus: recon.Status(r.ToStatus), FromVersion: r.FromVersion, ToVersion: r.ToVersion,
			Source: r.Source, RunID: r.RunID.Int64, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}

// Notification is a merchant_notifications (outbox) row.
type Notification struct {
	ID            string
	OrderID       int64
	MerchantID    string
	Event         recon.Event
	Payload       string
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LockedUntil   *time.Time
	LockedBy      string
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   *time.Time
}

type notificationRow struct {
	ID            string
	OrderID       int64
	MerchantID    string
	Event         string
	Payload       string
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LockedUntil   sql.NullTime
	LockedBy      sql.NullString
	LastError     sql.NullString
	CreatedAt     time.Time
	DeliveredAt   sql.NullTime
}

func (notificationRow) TableName() string { return "merchant_notifications" }

func (r notificationRow) toDomain() Notification {
	n := Notification{ID: r.ID, OrderID: r.OrderID, MerchantID: r.MerchantID, Event: recon.Event(r.Event),
		Payload: r.Payload, Status: r.Status, Attempts: r.Attempts, NextAttemptAt: r.NextAttemptAt.UTC(),
		LockedBy: r.LockedBy.String, LastError: r.LastError.String, CreatedAt: r.CreatedAt.UTC()}
	if r.LockedUntil.Valid {
		t := r.LockedUntil.Time.UTC()
		n.LockedUntil = &t
	}
	if r.DeliveredAt.Valid {
		t := r.DeliveredAt.Time.UTC()
		n.DeliveredAt = &t
	}
	return n
}

// NotificationsOf returns the outbox rows of one order.
func (s *Store) NotificationsOf(ctx context.Context, orderID int64) ([]Notification, error) {
	var rows []notificationRow
	if err := s.db.WithContext(ctx).Where("order_id = ?", orderID).Order(s.at("created_at") + ", id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read notifications of order %d: %w", orderID, err)
	}
	out := make([]Notification, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain()
	}
	return out, nil
}
