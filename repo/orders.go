package repo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// Shard selects one of Count disjoint partitions of the orders, by id modulo
// Count. The zero value selects every order.
type Shard struct{ Index, Count int }

// Scan says which orders a pass looks at.
type Scan struct {
	// Now: an order is due when its next_query_at is at or before Now.
	Now time.Time
	// CreatedBefore is the grace-period cutoff: orders created after it are
	// left for their callback.
	CreatedBefore time.Time
	// Backfill scans orders created in [From, To) whatever their
	// next_query_at; IncludeTerminal adds terminal orders (verification).
	Backfill        bool
	From, To        time.Time
	IncludeTerminal bool
	Channel         string // "" for every channel
	Merchant        string // "" for every merchant
	Shard           Shard
	// DryRun: the scan writes nothing either (on a mapped table, orders
	// recon has no bookkeeping row for yet get a provisional negative id).
	DryRun bool
}

// Cursor is a keyset position in a scan. The zero value is the start.
type Cursor struct {
	stream int
	at     time.Time
	id     int64
	key    string // a mapped table's backfill: the last id seen, as text
}

// Done reports whether the scan has no more pages.
func (c Cursor) Done() bool { return c.stream >= 2 }

const (
	streamNew       = 0 // due scan: never queried, by id
	streamScheduled = 1 // due scan: next_query_at <= now, by (next_query_at, id)
	streamDone      = 2
)

// ScanPage returns the next page of at most limit orders after cur, and the
// cursor of the page after. Every page is one indexed range query, so memory
// and cost stay proportional to the page however large the backlog.
func (s *Store) ScanPage(ctx context.Context, sc Scan, cur Cursor, limit int) ([]recon.Order, Cursor, error) {
	if s.orders != nil {
		return s.mappedScanPage(ctx, sc, cur, limit)
	}
	rows, next, err := scanOwn[orderRow](ctx, s, &orderRow{}, sc, cur, limit)
	if err != nil {
		return nil, cur, fmt.Errorf("scan orders: %w", err)
	}
	out := make([]recon.Order, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain()
	}
	return out, next, nil
}

// keyed is a row of a table the due scan pages (payment_orders,
// refund_orders): the fields of its keyset.
type keyed interface {
	keyset() (id int64, createdAt time.Time, nextQueryAt sql.NullTime)
}

func (r orderRow) keyset() (int64, time.Time, sql.NullTime) { return r.ID, r.CreatedAt, r.NextQueryAt }

// scanOwn returns the next page of at most limit rows of model's table
// after cur, and the cursor of the page after. Both of recon's own tables
// of pending items have the same columns and indexes for it.
func scanOwn[R keyed](ctx context.Context, s *Store, model any, sc Scan, cur Cursor, limit int) ([]R, Cursor, error) {
	for !cur.Done() {
		var rows []R
		if err := s.scanModel(s.db.WithContext(ctx).Model(model), sc, cur, limit).Find(&rows).Error; err != nil {
			return nil, cur, err
		}
		if len(rows) > 0 {
			id, created, nextAt := rows[len(rows)-1].keyset()
			next := Cursor{stream: cur.stream, id: id}
			switch {
			case sc.Backfill:
				next.at = created
			case cur.stream == streamScheduled:
				next.at = nextAt.Time
			}
			if len(rows) < limit {
				next = nextStream(sc, cur)
			}
			return rows, next, nil
		}
		cur = nextStream(sc, cur)
	}
	return nil, cur, nil
}

func nextStream(sc Scan, cur Cursor) Cursor {
	if sc.Backfill {
		return Cursor{stream: streamDone}
	}
	return Cursor{stream: cur.stream + 1}
}

// scanQuery is the query of one page of a scan stream.
func (s *Store) scanQuery(db *gorm.DB, sc Scan, cur Cursor, limit int) *gorm.DB {
	return s.scanModel(db.Model(&orderRow{}), sc, cur, limit)
}

// scanModel restricts q, on payment_orders or refund_orders, to one page
// of a scan stream.
func (s *Store) scanModel(q *gorm.DB, sc Scan, cur Cursor, limit int) *gorm.DB {
	switch {
	case sc.Backfill:
		q = s.after(s.backfillRange(q, sc), "created_at", cur)
	case cur.stream == streamNew:
		q = s.whereTime(q.Where("status = ? AND query_attempts = 0 AND next_query_at IS NULL AND id > ?", recon.StatusPending, cur.id),
			"created_at", "<=", sc.CreatedBefore).Order("id")
	default:
		q = s.whereTime(q.Where("status = ?", recon.StatusPending), "next_query_at", "<=", sc.Now)
		q = s.whereTime(q, "created_at", "<=", sc.CreatedBefore)
		q = s.after(q, "next_query_at", cur)
	}
	return scanFilters(q, sc).Limit(limit)
}

// after restricts q to the rows after cur in (col, id) order, and orders
// them so. The redundant lower bound on col lets an index on (col, id) start
// the range at the cursor.
func (s *Store) after(q *gorm.DB, col string, cur Cursor) *gorm.DB {
	at := dbTime(cur.at)
	return q.Where(s.cmpAt(col, ">=")+" AND ("+s.cmpAt(col, ">")+" OR ("+s.cmpAt(col, "=")+" AND id > ?))", at, at, at, cur.id).
		Order(s.at(col) + ", id")
}

// backfillRange restricts q to the orders a backfill covers.
func (s *Store) backfillRange(q *gorm.DB, sc Scan) *gorm.DB {
	q = s.whereTime(s.whereTime(q, "created_at", ">=", sc.From), "created_at", "<", sc.To)
	if !sc.IncludeTerminal {
		q = q.Where("status = ?", recon.StatusPending)
	}
	return q
}

// scanFilters adds the channel, merchant and shard filters of sc.
func scanFilters(q *gorm.DB, sc Scan) *gorm.DB {
	if sc.Channel != "" {
		q = q.Where("channel = ?", sc.Channel)
	}
	if sc.Merchant != "" {
		q = q.Where("merchant_id = ?", sc.Merchant)
	}
	if sc.Shard.Count > 1 {
		q = q.Where("id % ? = ?", sc.Shard.Count, sc.Shard.Index)
	}
	return q
}

// CountBackfill returns how many orders the backfill scan sc will visit, for
// its progress display.
func (s *Store) CountBackfill(ctx context.Context, sc Scan) (int64, error) {
	if s.orders != nil {
		return s.mappedCountBackfill(ctx, sc)
	}
	var n int64
	q := s.backfillRange(s.db.WithContext(ctx).Model(&orderRow{}), sc)
	if err := scanFilters(q, sc).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count backfill orders: %w", err)
	}
	return n, nil
}

// BackfillCountExact reports whether CountBackfill(sc) is exact. A shard of
// a mapped table is an estimate: orders get their shard when first seen.
func (s *Store) BackfillCountExact(sc Scan) bool {
	return s.orders == nil || sc.Shard.Count <= 1
}

// CountDue returns how many orders are due and the creation time of the
// oldest, for the backlog metrics.
func (s *Store) CountDue(ctx context.Context, now, createdBefore time.Time) (int64, *time.Time, error) {
	if s.orders != nil {
		return s.mappedCountDue(ctx, now, createdBefore)
	}
	due := func() *gorm.DB {
		due, args := s.timeCmp("next_query_at", "<=", now)
		return s.whereTime(s.db.WithContext(ctx).Model(&orderRow{}).Where("status = ?", recon.StatusPending), "created_at", "<=", createdBefore).
			Where("((query_attempts = 0 AND next_query_at IS NULL) OR "+due+")", args...)
	}
	var n int64
	if err := due().Count(&n).Error; err != nil {
		return 0, nil, fmt.Errorf("count due orders: %w", err)
	}
	if n == 0 {
		return 0, nil, nil
	}
	// The oldest row is read as a row, not as MIN(created_at): SQLite
	// returns an aggregate of a DATETIME column as text.
	var oldest orderRow
	if err := due().Select("created_at").Order(s.at("created_at")).Limit(1).Take(&oldest).Error; err != nil {
		return 0, nil, fmt.Errorf("find the oldest due order: %w", err)
	}
	t := oldest.CreatedAt.UTC()
	return n, &t, nil
}

// GetOrder reads one order by id. It returns recon.ErrNotFound if absent.
func (s *Store) GetOrder(ctx context.Context, id int64) (recon.Order, error) {
	return s.orderIn(s.db.WithContext(ctx), id)
}

// orderIn reads one order by id through db (a transaction's too).
func (s *Store) orderIn(db *gorm.DB, id int64) (recon.Order, error) {
	if s.orders != nil {
		return s.mappedGetOrder(db, id)
	}
	return s.getOrder(db, "id = ?", id)
}

// GetOrderByNo reads one order by its merchant order number.
func (s *Store) GetOrderByNo(ctx context.Context, orderNo string) (recon.Order, error) {
	if s.orders != nil {
		return s.mappedGetOrderBy(s.db.WithContext(ctx), s.orders.no, orderNo)
	}
	return s.getOrder(s.db.WithContext(ctx), "order_no = ?", orderNo)
}

// GetOrderByTxnID reads the order whose channel_txn_id is txnID (the column
// has no index: this serves the simulator server, not the pass).
func (s *Store) GetOrderByTxnID(ctx context.Context, txnID string) (recon.Order, error) {
	if s.orders != nil {
		return s.mappedGetOrderBy(s.db.WithContext(ctx), s.orders.txn, txnID)
	}
	return s.getOrder(s.db.WithContext(ctx), "channel_txn_id = ?", txnID)
}

func (s *Store) getOrder(db *gorm.DB, where string, arg any) (recon.Order, error) {
	var r orderRow
	err := db.Where(where, arg).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return recon.Order{}, fmt.Errorf("order %v: %w", arg, recon.ErrNotFound)
	}
	if err != nil {
		return recon.Order{}, fmt.Errorf("read order %v: %w", arg, err)
	}
	return r.toDomain(), nil
}

// InsertOrders inserts orders as the payment service would, in batches, and
// sets their ids. It is for seeding, tests and benchmarks.
func (s *Store) InsertOrders(ctx context.Context, orders []recon.Order) error {
	if s.orders != nil {
		return s.mappedInsertOrders(ctx, orders, nil)
	}
	return insertOwn(ctx, s, "orders", orders, orderFromDomain, func(o *recon.Order, r orderRow) { o.ID = r.ID })
}

// insertOwn inserts items into one of recon's own tables in batches of
// rows made by conv, and sets each item's id from its row (setID).
func insertOwn[D, R any](ctx context.Context, s *Store, what string, items []D, conv func(D) R, setID func(*D, R)) error {
	const batch = 1000
	for start := 0; start < len(items); start += batch {
		end := min(start+batch, len(items))
		rows := make([]R, 0, end-start)
		for _, it := range items[start:end] {
			rows = append(rows, conv(it))
		}
		if err := s.db.WithContext(ctx).Create(&rows).Error; err != nil {
			return fmt.Errorf("insert %s: %w", what, err)
		}
		for i := range rows {
			setID(&items[start+i], rows[i])
		}
	}
	return nil
}

// UpsertMerchant creates or updates a merchant.
func (s *Store) UpsertMerchant(ctx context.Context, m Merchant, now time.Time) error {
	row := merchantRow{ID: m.ID, Name: m.Name, NotifyURL: m.NotifyURL, NotifySecret: m.NotifySecret, CreatedAt: dbTime(now)}
	err := s.db.WithContext(ctx).Save(&row).Error
	if err != nil {
		return fmt.Errorf("upsert merchant %s: %w", m.ID, err)
	}
	return nil
}

// GetMerchant reads a merchant. It returns recon.ErrNotFound if absent.
func (s *Store) GetMerchant(ctx context.Context, id string) (Merchant, error) {
	var r merchantRow
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Merchant{}, fmt.Errorf("merchant %s: %w", id, recon.ErrNotFound)
	}
	if err != nil {
		return Merchant{}, fmt.Errorf("read merchant %s: %w", id, err)
	}
	return Merchant{ID: r.ID, Name: r.Name, NotifyURL: r.NotifyURL, NotifySecret: r.NotifySecret}, nil
}
