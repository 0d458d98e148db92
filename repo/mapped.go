package repo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// A mapped table (config key orders) is read and guarded through orderMap;
// recon's bookkeeping of each of its orders (a stable int64 ref used as
// recon.Order.ID everywhere else, attempts, schedule, last error) is a
// recon_order_state row keyed by the table's id as text. The due scan runs
// on recon_order_state, as it runs on payment_orders, and reads the team's
// rows by primary key; new pending orders get their state row when a pass
// first sees them (registerNew).

// stateRow is a recon_order_state row.
type stateRow struct {
	ID             int64
	OrderKey       string
	Active         bool
	Version        int64
	QueryAttempts  int
	NextQueryAt    sql.NullTime
	LastQueryError sql.NullString
	CreatedAt      time.Time
}

func (stateRow) TableName() string { return "recon_order_state" }

// registerLag is how far behind the newest registered order a pass looks
// again for new pending orders, for rows whose inserting transaction
// committed after younger ones were seen.
const registerLag = 10 * time.Minute

// teamRow is one row of the mapped table, converted.
type teamRow struct {
	key   string
	order recon.Order // ID, scheduling fields unset
	other bool        // an other_terminal status: recon leaves it alone
}

// keyArg is a key as a query argument of the id column's type.
func (om *orderMap) keyArg(k string) any {
	if om.intKey {
		if n, err := strconv.ParseInt(k, 10, 64); err == nil {
			return n
		}
	}
	return k
}

func (om *orderMap) keyArgs(keys []string) []any {
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = om.keyArg(k)
	}
	return out
}

func orNull(col string) string {
	if col == "" {
		return "NULL"
	}
	return col
}

// selectSQL reads the mapped columns in teamRow order.
func (om *orderMap) selectSQL() string {
	ver := "0"
	if om.version != "" {
		ver = om.version
	}
	return "SELECT " + strings.Join([]string{om.id, om.no, om.merchant, om.channel, orNull(om.txn), om.amount,
		orNull(om.currency), om.status, ver, om.created, orNull(om.updated), orNull(om.paid)}, ", ") + " FROM " + om.table
}

// readTeam runs selectSQL with where and converts the rows.
func (s *Store) readTeam(db *gorm.DB, where string, args ...any) ([]teamRow, error) {
	om := s.orders
	rows, err := db.Raw(om.selectSQL()+" "+where, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []teamRow
	for rows.Next() {
		v := make([]any, 12)
		ptrs := make([]any, 12)
		for i := range v {
			ptrs[i] = &v[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r, err := om.convert(v)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// convert turns one selected row into a teamRow: status values mapped,
// amounts scaled exactly (decimal text, never float arithmetic), currency
// upper-cased, times in UTC.
func (om *orderMap) convert(v []any) (teamRow, error) {
	r := teamRow{key: canonValue(v[0])}
	o := &r.order
	o.OrderNo, o.MerchantID = canonValue(v[1]), canonValue(v[2])
	ch := canonValue(v[3])
	if name, ok := om.chanOut[ch]; ok {
		ch = name
	}
	o.Channel, o.ChannelTxnID = ch, canonValue(v[4])
	amount, err := minorUnits(v[5], om.m.AmountScale)
	if err != nil {
		return r, fmt.Errorf("order %s: amount: %w", r.key, err)
	}
	o.Amount = amount
	o.Currency = strings.ToUpper(strings.TrimSpace(canonValue(v[6])))
	if om.currency == "" {
		o.Currency = strings.ToUpper(om.m.Currency)
	}
	raw := canonValue(v[7])
	st, known := om.toStatus[raw]
	switch {
	case known:
		o.Status = st
	case om.other[raw]:
		r.other = true
		o.Status = recon.Status("OTHER:" + raw)
	default:
		o.Status = recon.Status("UNMAPPED:" + raw)
	}
	o.StoredStatus = raw
	if om.version != "" {
		n, _ := strconv.ParseInt(canonValue(v[8]), 10, 64)
		o.Version = n
	}
	if o.CreatedAt, err = timeValue(v[9]); err != nil {
		return r, fmt.Errorf("order %s: created_at: %w", r.key, err)
	}
	if v[10] != nil {
		if o.UpdatedAt, err = timeValue(v[10]); err != nil {
			return r, fmt.Errorf("order %s: updated_at: %w", r.key, err)
		}
	} else {
		o.UpdatedAt = o.CreatedAt
	}
	if v[11] != nil {
		t, err := timeValue(v[11])
		if err != nil {
			return r, fmt.Errorf("order %s: paid_at: %w", r.key, err)
		}
		if !t.IsZero() {
			o.PaidAt = &t
		}
	}
	return r, nil
}

// minorUnits converts an amount with scale decimals to integer minor units
// exactly. A REAL that SQLite stored for a DECIMAL column is read through
// its shortest decimal text.
func minorUnits(v any, scale int) (int64, error) {
	var s string
	switch x := v.(type) {
	case int64:
		s = strconv.FormatInt(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case []byte:
		s = string(x)
	case string:
		s = x
	case nil:
		return 0, errors.New("is NULL")
	default:
		return 0, fmt.Errorf("unexpected type %T", v)
	}
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	frac = strings.TrimRight(frac, "0")
	if len(frac) > scale {
		return 0, fmt.Errorf("%q has more than %d decimals", s, scale)
	}
	frac += strings.Repeat("0", scale-len(frac))
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil || whole == "" {
		return 0, fmt.Errorf("%q is not a decimal amount", s)
	}
	if neg {
		n = -n
	}
	return n, nil
}

// majorUnits is minorUnits' inverse: the decimal text for a DECIMAL column.
func majorUnits(n int64, scale int) string {
	if scale == 0 {
		return strconv.FormatInt(n, 10)
	}
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	s := strconv.FormatInt(n, 10)
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	return sign + s[:len(s)-scale] + "." + s[len(s)-scale:]
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"}

func timeValue(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil
	case []byte:
		return parseTimeText(string(x))
	case string:
		return parseTimeText(x)
	case nil:
		return time.Time{}, errors.New("is NULL")
	}
	return time.Time{}, fmt.Errorf("unexpected type %T", v)
}

func parseTimeText(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, strings.TrimSpace(s)); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time", s)
}

// guard is the condition under which a mapped table's row is still the
// order o that recon read and decided on, for the guarded update. With a
// version column it is a pending status and the version read. Without one
// it is the pending status value read (StoredStatus), the amount and, when
// there is a currency column, the currency: the payment service may change
// those without a trace, and an order must never be settled on facts that
// are no longer its own. ok is false when o was not read pending.
func (om *orderMap) guard(o recon.Order) (where string, args []any, ok bool) {
	if om.version != "" {
		// Spelled out: the guarded update may run as a prepared statement,
		// which does not expand a slice.
		in := om.status + " IN (?" + strings.Repeat(", ?", len(om.pending)-1) + ")"
		return in + " AND " + om.version + " = ?", append(append([]any(nil), om.pending...), o.Version), true
	}
	var read any
	for _, p := range om.pending {
		if canonValue(p) == o.StoredStatus {
			read, ok = p, true
		}
	}
	if !ok {
		return "", nil, false
	}
	where, args = om.status+" = ?", []any{read}
	if om.m.AmountScale == 0 {
		where += " AND " + om.amount + " = ?"
		args = append(args, o.Amount)
	} else {
		// Compared as a decimal of the column's scale, never through a
		// float: MySQL compares a DECIMAL and a text as doubles.
		where += fmt.Sprintf(" AND %s = CAST(? AS DECIMAL(65, %d))", om.amount, om.m.AmountScale)
		args = append(args, majorUnits(o.Amount, om.m.AmountScale))
	}
	if om.currency != "" {
		// As convert reads it: trimmed and upper-cased.
		where += " AND COALESCE(UPPER(TRIM(" + om.currency + ")), '') = ?"
		args = append(args, o.Currency)
	}
	return where, args, true
}

// withState makes the domain order of a team row and its state row. Without
// a version column, Version is recon's count of its own transitions of the
// order (kept in recon_order_state) and the guard is StoredStatus.
func (om *orderMap) withState(r teamRow, st stateRow) recon.Order {
	o := r.order
	o.ID, o.QueryAttempts, o.LastQueryError = st.ID, st.QueryAttempts, st.LastQueryError.String
	if om.version == "" {
		o.Version = st.Version
	}
	if st.NextQueryAt.Valid {
		t := st.NextQueryAt.Time.UTC()
		o.NextQueryAt = &t
	}
	return o
}

// stateOf returns the state rows of keys, registering those that have
// none (insert-or-ignore: a concurrent registration is fine).
func (s *Store) stateOf(db *gorm.DB, rows []teamRow) (map[string]stateRow, error) {
	if len(rows) == 0 {
		return map[string]stateRow{}, nil
	}
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = r.key
	}
	got, err := s.readState(db, keys)
	if err != nil {
		return nil, err
	}
	var missing []recon.Order
	var missingKeys []string
	for _, r := range rows {
		if _, ok := got[r.key]; !ok {
			missing = append(missing, r.order)
			missingKeys = append(missingKeys, r.key)
		}
	}
	if len(missing) == 0 {
		return got, nil
	}
	if err := s.registerState(db, missingKeys, missing); err != nil {
		return nil, err
	}
	more, err := s.readState(db, missingKeys)
	if err != nil {
		return nil, err
	}
	for k, v := range more {
		got[k] = v
	}
	return got, nil
}

func (s *Store) readState(db *gorm.DB, keys []string) (map[string]stateRow, error) {
	out := map[string]stateRow{}
	for start := 0; start < len(keys); start += rowsPerInsert {
		var rows []stateRow
		if err := db.Table(s.orders.kind.state).Where("order_key IN ?", keys[start:min(start+rowsPerInsert, len(keys))]).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("read order state: %w", err)
		}
		for _, r := range rows {
			out[r.OrderKey] = r
		}
	}
	return out, nil
}

// ctxOf is the context a handle was given (WithContext).
func ctxOf(db *gorm.DB) context.Context {
	if db.Statement != nil && db.Statement.Context != nil {
		return db.Statement.Context
	}
	return context.Background()
}

// registerState inserts the state rows of orders (keys[i] is orders[i]'s)
// unless they exist; a terminal order's row is inactive.
func (s *Store) registerState(db *gorm.DB, keys []string, orders []recon.Order) error {
	const vals = "?, ?, ?, ?, ?, ?"
	for start := 0; start < len(keys); start += rowsPerInsert {
		end := min(start+rowsPerInsert, len(keys))
		var args []any
		for i := start; i < end; i++ {
			o := orders[i]
			active := 0
			if o.Status == recon.StatusPending {
				active = 1
			}
			args = append(args, keys[i], active, o.QueryAttempts, nullTime(o.NextQueryAt),
				nullString(truncate(o.LastQueryError, 1024)), dbTime(o.CreatedAt))
		}
		q := s.insertIgnore(s.orders.kind.state, "order_key, active, query_attempts, next_query_at, last_query_error, created_at", vals)
		tuple := "(" + vals + ")"
		head, tail, _ := strings.Cut(q, tuple)
		q = head + strings.Repeat(tuple+", ", end-start-1) + tuple + tail
		// Passes that start together (shards) register the same new orders:
		// a deadlock between their inserts is retried, and a rerun of the
		// insert-or-ignore leaves the rows registered meanwhile alone.
		if _, err := s.writeOne(ctxOf(db), "order_state", q, args...); err != nil {
			return fmt.Errorf("register %s in %s: %w", s.orders.kind.key, s.orders.kind.state, err)
		}
	}
	return nil
}

// registerNew gives every pending order of the mapped table created at or
// before createdBefore, and after the watermark of the last registration
// (less registerLag), its state row, then moves the watermark to
// createdBefore. Its cost is the new orders, not the backlog; orders
// registered one by one meanwhile (recon check, statements) do not move it.
func (s *Store) registerNew(ctx context.Context, createdBefore time.Time) error {
	db := s.db.WithContext(ctx)
	from, err := s.registeredFrom(db)
	if err != nil {
		return err
	}
	var cur *teamRow
	for {
		const page = 1000
		rows, err := s.newPending(db, from, createdBefore, cur, page)
		if err != nil {
			return err
		}
		if _, err := s.stateOf(db, rows); err != nil {
			return err
		}
		if len(rows) < page {
			break
		}
		cur = &rows[len(rows)-1]
	}
	until := dbTime(createdBefore)
	q := `INSERT INTO recon_order_watermark (name, registered_until) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET registered_until = excluded.registered_until
		WHERE julianday(excluded.registered_until) > julianday(recon_order_watermark.registered_until)`
	if s.dialect == MySQL {
		q = `INSERT INTO recon_order_watermark (name, registered_until) VALUES (?, ?)
			ON DUPLICATE KEY UPDATE registered_until = GREATEST(registered_until, VALUES(registered_until))`
	}
	if _, err := s.writeOne(ctx, "order_state", q, s.orders.kind.key, until); err != nil {
		return fmt.Errorf("move the registration watermark: %w", err)
	}
	return nil
}

// registeredFrom is where a pass looks for new pending orders: the
// registration watermark less registerLag (the beginning without one).
func (s *Store) registeredFrom(db *gorm.DB) (time.Time, error) {
	var marks []struct{ RegisteredUntil time.Time }
	if err := db.Raw("SELECT registered_until FROM recon_order_watermark WHERE name = ?", s.orders.kind.key).Scan(&marks).Error; err != nil {
		return time.Time{}, fmt.Errorf("read the registration watermark: %w", err)
	}
	if len(marks) == 1 {
		return marks[0].RegisteredUntil.Add(-registerLag), nil
	}
	return time.Time{}, nil
}

// newPending reads a page of the mapped table's pending orders created in
// [from, createdBefore] after cur, by (created_at, id).
func (s *Store) newPending(db *gorm.DB, from, createdBefore time.Time, cur *teamRow, limit int) ([]teamRow, error) {
	om := s.orders
	lo, loArgs := s.timeCmp(om.created, ">=", from)
	hi, hiArgs := s.timeCmp(om.created, "<=", createdBefore)
	where := "WHERE " + om.status + " IN ? AND " + lo + " AND " + hi
	args := append(append([]any{om.pending}, loArgs...), hiArgs...)
	if cur != nil {
		at := dbTime(cur.order.CreatedAt)
		where += " AND (" + s.cmpAt(om.created, ">") + " OR (" + s.cmpAt(om.created, "=") + " AND " + om.id + " > ?))"
		args = append(args, at, at, om.keyArg(cur.key))
	}
	rows, err := s.readTeam(db, where+fmt.Sprintf(" ORDER BY %s, %s LIMIT %d", s.at(om.created), om.id, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("find new orders in %s: %w", om.m.Table, err)
	}
	return rows, nil
}

// streamFresh is a dry run's first stream on a mapped table: the new
// pending orders a pass would register, read without registering them.
const streamFresh = -1

// freshDone marks the cursor after streamFresh (the zero cursor restarts).
const freshDone = "\x00fresh-done"

// freshPage is a page of streamFresh: orders without a bookkeeping row get
// provisional negative ids (cur.id counts them down).
func (s *Store) freshPage(ctx context.Context, sc Scan, cur Cursor, limit int) ([]recon.Order, Cursor, error) {
	db := s.db.WithContext(ctx)
	from, err := s.registeredFrom(db)
	if err != nil {
		return nil, cur, err
	}
	var after *teamRow
	if cur.key != "" {
		after = &teamRow{key: cur.key, order: recon.Order{CreatedAt: cur.at}}
	}
	rows, err := s.newPending(db, from, sc.CreatedBefore, after, limit)
	if err != nil {
		return nil, cur, err
	}
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = r.key
	}
	known, err := s.readState(db, keys)
	if err != nil {
		return nil, cur, err
	}
	next := Cursor{stream: streamNew, key: freshDone}
	counter := cur.id
	var out []recon.Order
	for _, r := range rows {
		if _, ok := known[r.key]; ok {
			continue // in the bookkeeping streams
		}
		counter--
		if (sc.Channel != "" && r.order.Channel != sc.Channel) || (sc.Merchant != "" && r.order.MerchantID != sc.Merchant) ||
			(sc.Shard.Count > 1 && (-counter)%int64(sc.Shard.Count) != int64(sc.Shard.Index)) {
			continue
		}
		out = append(out, s.orders.withState(r, stateRow{ID: counter, OrderKey: r.key, Active: true, CreatedAt: r.order.CreatedAt}))
	}
	if len(rows) == limit {
		last := rows[len(rows)-1]
		next = Cursor{stream: streamFresh, at: last.order.CreatedAt, key: last.key, id: counter}
	}
	return out, next, nil
}

// mappedScanPage is ScanPage on a mapped table.
func (s *Store) mappedScanPage(ctx context.Context, sc Scan, cur Cursor, limit int) ([]recon.Order, Cursor, error) {
	if sc.Backfill {
		return s.mappedBackfillPage(ctx, sc, cur, limit)
	}
	if cur == (Cursor{}) {
		if sc.DryRun {
			cur = Cursor{stream: streamFresh}
		} else if err := s.registerNew(ctx, sc.CreatedBefore); err != nil {
			return nil, cur, fmt.Errorf("scan orders: %w", err)
		}
	}
	db := s.db.WithContext(ctx)
	for !cur.Done() {
		if cur.stream == streamFresh {
			orders, next, err := s.freshPage(ctx, sc, cur, limit)
			if err != nil {
				return nil, cur, fmt.Errorf("scan orders: %w", err)
			}
			if cur = next; len(orders) > 0 {
				return orders, cur, nil
			}
			continue
		}
		q := db.Table(s.orders.kind.state)
		if cur.stream == streamNew {
			q = q.Where("active = ? AND query_attempts = 0 AND next_query_at IS NULL AND created_at <= ? AND id > ?",
				true, dbTime(sc.CreatedBefore), cur.id).Order("id")
		} else {
			q = q.Where("active = ? AND next_query_at <= ? AND created_at <= ?", true, dbTime(sc.Now), dbTime(sc.CreatedBefore)).
				Where("(next_query_at > ? OR (next_query_at = ? AND id > ?))", dbTime(cur.at), dbTime(cur.at), cur.id).
				Order("next_query_at, id")
		}
		if sc.Shard.Count > 1 {
			q = q.Where("id % ? = ?", sc.Shard.Count, sc.Shard.Index)
		}
		var states []stateRow
		if err := q.Limit(limit).Find(&states).Error; err != nil {
			return nil, cur, fmt.Errorf("scan orders: %w", err)
		}
		next := nextStream(sc, cur)
		if len(states) == limit {
			last := states[len(states)-1]
			next = Cursor{stream: cur.stream, id: last.ID, at: last.NextQueryAt.Time}
		}
		orders, err := s.joinTeam(ctx, states, sc)
		if err != nil {
			return nil, cur, fmt.Errorf("scan orders: %w", err)
		}
		cur = next
		if len(orders) > 0 {
			return orders, cur, nil
		}
	}
	return nil, cur, nil
}

// teamRowsOf reads the team's rows of states by primary key, by key.
func (s *Store) teamRowsOf(db *gorm.DB, states []stateRow) (map[string]teamRow, error) {
	om := s.orders
	keys := make([]string, len(states))
	for i, st := range states {
		keys[i] = st.OrderKey
	}
	rows, err := s.readTeam(db, "WHERE "+om.id+" IN ?", om.keyArgs(keys))
	if err != nil {
		return nil, fmt.Errorf("read orders of %s: %w", om.m.Table, err)
	}
	byKey := make(map[string]teamRow, len(rows))
	for _, r := range rows {
		byKey[r.key] = r
	}
	return byKey, nil
}

// joinTeam reads the team's rows of states by primary key and returns the
// pending ones that pass sc's channel and merchant filters. A state row
// whose order is no longer pending (a callback settled it) is retired, so
// it costs no later scan.
func (s *Store) joinTeam(ctx context.Context, states []stateRow, sc Scan) ([]recon.Order, error) {
	if len(states) == 0 {
		return nil, nil
	}
	om := s.orders
	db := s.db.WithContext(ctx)
	byKey, err := s.teamRowsOf(db, states)
	if err != nil {
		return nil, err
	}
	var out []recon.Order
	var retire []int64
	for _, st := range states {
		r, ok := byKey[st.OrderKey]
		if !ok || r.order.Status != recon.StatusPending {
			retire = append(retire, st.ID)
			continue
		}
		if (sc.Channel != "" && r.order.Channel != sc.Channel) || (sc.Merchant != "" && r.order.MerchantID != sc.Merchant) {
			continue
		}
		out = append(out, om.withState(r, st))
	}
	if len(retire) > 0 && !sc.DryRun {
		if _, err := s.writeOne(ctx, "order_state", "UPDATE "+s.orders.kind.state+" SET active = ? WHERE id IN ?", false, retire); err != nil {
			return nil, fmt.Errorf("retire settled orders: %w", err)
		}
	}
	return out, nil
}

// teamFilter renders the backfill range and filters of sc on the mapped
// table. other_terminal orders are never included.
func (s *Store) teamFilter(sc Scan) (string, []any) {
	om := s.orders
	lo, loArgs := s.timeCmp(om.created, ">=", sc.From)
	hi, hiArgs := s.timeCmp(om.created, "<", sc.To)
	where := "WHERE " + lo + " AND " + hi
	args := append(loArgs, hiArgs...)
	vals := append([]any(nil), om.pending...)
	if sc.IncludeTerminal {
		for _, st := range om.kind.statuses[1:] {
			for _, v := range om.m.StatusValues[string(st)] {
				if om.intStatus {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					vals = append(vals, n)
				} else {
					vals = append(vals, v)
				}
			}
		}
	}
	where += " AND " + om.status + " IN ?"
	args = append(args, vals)
	if sc.Channel != "" {
		values := append([]string{sc.Channel}, om.chanIn[sc.Channel]...)
		where += " AND " + om.channel + " IN ?"
		args = append(args, values)
	}
	if sc.Merchant != "" {
		where += " AND " + om.merchant + " = ?"
		args = append(args, sc.Merchant)
	}
	return where, args
}

// mappedBackfillPage pages the mapped table by (created_at, id); every order
// seen gets its state row (its ref), and shards split by that ref.
func (s *Store) mappedBackfillPage(ctx context.Context, sc Scan, cur Cursor, limit int) ([]recon.Order, Cursor, error) {
	om := s.orders
	db := s.db.WithContext(ctx)
	for !cur.Done() {
		where, args := s.teamFilter(sc)
		if cur.key != "" {
			where += " AND (" + s.cmpAt(om.created, ">") + " OR (" + s.cmpAt(om.created, "=") + " AND " + om.id + " > ?))"
			args = append(args, dbTime(cur.at), dbTime(cur.at), om.keyArg(cur.key))
		}
		rows, err := s.readTeam(db, where+fmt.Sprintf(" ORDER BY %s, %s LIMIT %d", s.at(om.created), om.id, limit), args...)
		if err != nil {
			return nil, cur, fmt.Errorf("scan orders: %w", err)
		}
		next := Cursor{stream: streamDone}
		if len(rows) == limit {
			last := rows[len(rows)-1]
			next = Cursor{stream: streamNew, at: last.order.CreatedAt, key: last.key}
		}
		var states map[string]stateRow
		if sc.DryRun {
			states, err = s.provisionalState(db, rows, &cur.id)
		} else {
			states, err = s.stateOf(db, rows)
		}
		if err != nil {
			return nil, cur, fmt.Errorf("scan orders: %w", err)
		}
		next.id = cur.id
		var out []recon.Order
		for _, r := range rows {
			st := states[r.key]
			if ref := max(st.ID, -st.ID); sc.Shard.Count > 1 && ref%int64(sc.Shard.Count) != int64(sc.Shard.Index) {
				continue
			}
			out = append(out, om.withState(r, st))
		}
		cur = next
		if len(out) > 0 {
			return out, cur, nil
		}
	}
	return nil, cur, nil
}

// provisionalState is stateOf for a dry run: orders without a bookkeeping
// row get a provisional negative id (counted down in *counter) instead of
// one written.
func (s *Store) provisionalState(db *gorm.DB, rows []teamRow, counter *int64) (map[string]stateRow, error) {
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = r.key
	}
	states, err := s.readState(db, keys)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if _, ok := states[r.key]; !ok {
			*counter--
			states[r.key] = stateRow{ID: *counter, OrderKey: r.key, Active: r.order.Status == recon.StatusPending, CreatedAt: r.order.CreatedAt}
		}
	}
	return states, nil
}

// mappedCountBackfill counts the orders a backfill of the mapped table
// visits (all shards).
func (s *Store) mappedCountBackfill(ctx context.Context, sc Scan) (int64, error) {
	where, args := s.teamFilter(sc)
	var n int64
	if err := s.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM "+s.orders.table+" "+where, args...).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("count backfill orders: %w", err)
	}
	if sc.Shard.Count > 1 {
		n = (n + int64(sc.Shard.Count) - 1) / int64(sc.Shard.Count)
	}
	return n, nil
}

// mappedCountDue counts due orders from recon_order_state (orders settled by
// a callback since the last pass may be counted until a pass retires them).
func (s *Store) mappedCountDue(ctx context.Context, now, createdBefore time.Time) (int64, *time.Time, error) {
	due := func() *gorm.DB {
		return s.db.WithContext(ctx).Table(s.orders.kind.state).
			Where("active = ? AND created_at <= ?", true, dbTime(createdBefore)).
			Where("((query_attempts = 0 AND next_query_at IS NULL) OR next_query_at <= ?)", dbTime(now))
	}
	var n int64
	if err := due().Count(&n).Error; err != nil {
		return 0, nil, fmt.Errorf("count due orders: %w", err)
	}
	if n == 0 {
		return 0, nil, nil
	}
	var oldest stateRow
	if err := due().Select("created_at").Order("created_at").Limit(1).Take(&oldest).Error; err != nil {
		return 0, nil, fmt.Errorf("find the oldest due order: %w", err)
	}
	t := oldest.CreatedAt.UTC()
	return n, &t, nil
}

// mappedGetOrder reads one order by recon's ref.
func (s *Store) mappedGetOrder(db *gorm.DB, id int64) (recon.Order, error) {
	var st stateRow
	err := db.Table(s.orders.kind.state).Where("id = ?", id).Take(&st).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return recon.Order{}, fmt.Errorf("order %d: %w", id, recon.ErrNotFound)
	}
	if err != nil {
		return recon.Order{}, fmt.Errorf("read order %d: %w", id, err)
	}
	rows, err := s.readTeam(db, "WHERE "+s.orders.id+" = ?", s.orders.keyArg(st.OrderKey))
	if err != nil {
		return recon.Order{}, fmt.Errorf("read order %d: %w", id, err)
	}
	if len(rows) == 0 {
		return recon.Order{}, fmt.Errorf("order %d (%s %s): %w", id, s.orders.m.Table, st.OrderKey, recon.ErrNotFound)
	}
	return s.orders.withState(rows[0], st), nil
}

// mappedGetOrderBy reads one order by a mapped column, giving it its state
// row if it has none yet.
func (s *Store) mappedGetOrderBy(db *gorm.DB, col string, arg any) (recon.Order, error) {
	if col == "" {
		return recon.Order{}, fmt.Errorf("order %v: %w", arg, recon.ErrNotFound)
	}
	rows, err := s.readTeam(db, "WHERE "+col+" = ? LIMIT 1", arg)
	if err != nil {
		return recon.Order{}, fmt.Errorf("read order %v: %w", arg, err)
	}
	if len(rows) == 0 {
		return recon.Order{}, fmt.Errorf("order %v: %w", arg, recon.ErrNotFound)
	}
	states, err := s.stateOf(db, rows)
	if err != nil {
		return recon.Order{}, err
	}
	return s.orders.withState(rows[0], states[rows[0].key]), nil
}

// mappedInsertOrders inserts orders into the mapped table as the team's
// payment service would (for tests, seeding and benchmarks), registers
// them with their scheduling fields and sets their refs.
//
// On a refunds table (a refund view, refundView), parents[i] is the key of
// orders[i]'s refunded order in the orders table.
func (s *Store) mappedInsertOrders(ctx context.Context, orders []recon.Order, parents []string) error {
	om := s.orders
	db := s.db.WithContext(ctx)
	sameNo := om.m.Columns.OrderNo == om.m.Columns.ID
	cols := []string{}
	if !om.intKey || sameNo {
		cols = append(cols, om.id)
	}
	if !sameNo {
		cols = append(cols, om.no)
	}
	cols = append(cols, om.merchant, om.channel, om.amount, om.status, om.created)
	for _, c := range []string{om.txn, om.currency, om.version, om.updated, om.paid, om.parent} {
		if c != "" {
			cols = append(cols, c)
		}
	}
	chanValue := map[string]string{}
	for v, name := range om.m.ChannelValues {
		chanValue[name] = v
	}
	keys := make([]string, len(orders))
	tuple := "(?" + strings.Repeat(", ?", len(cols)-1) + ")"
	const perInsert = 50
	for start := 0; start < len(orders); start += perInsert {
		end := min(start+perInsert, len(orders))
		var args []any
		nos := make([]string, 0, end-start)
		for j, o := range orders[start:end] {
			nos = append(nos, o.OrderNo)
			if !om.intKey || sameNo {
				args = append(args, o.OrderNo)
			}
			if !sameNo {
				args = append(args, o.OrderNo)
			}
			ch := o.Channel
			if v, ok := chanValue[ch]; ok {
				ch = v
			}
			status := o.Status
			if status == "" {
				status = recon.StatusPending
			}
			sv := om.write[status]
			if status == recon.StatusPending {
				sv = om.pending[0]
			}
			var amount any = o.Amount
			if om.m.AmountScale > 0 {
				amount = majorUnits(o.Amount, om.m.AmountScale)
			}
			args = append(args, o.MerchantID, ch, amount, sv, dbTime(o.CreatedAt))
			if om.txn != "" {
				args = append(args, nullString(o.ChannelTxnID))
			}
			if om.currency != "" {
				args = append(args, o.Currency)
			}
			if om.version != "" {
				args = append(args, o.Version)
			}
			if om.updated != "" {
				u := o.UpdatedAt
				if u.IsZero() {
					u = o.CreatedAt
				}
				args = append(args, dbTime(u))
			}
			if om.paid != "" {
				args = append(args, nullTime(o.PaidAt))
			}
			if om.parent != "" {
				args = append(args, parents[start+j])
			}
		}
		q := "INSERT INTO " + om.table + " (" + strings.Join(cols, ", ") + ") VALUES " +
			strings.Repeat(tuple+", ", end-start-1) + tuple
		if err := db.Exec(q, args...).Error; err != nil {
			return fmt.Errorf("insert orders into %s: %w", om.m.Table, err)
		}
		rows, err := s.readTeam(db, "WHERE "+om.no+" IN ?", nos)
		if err != nil {
			return fmt.Errorf("read back orders from %s: %w", om.m.Table, err)
		}
		keyOf := make(map[string]string, len(rows))
		for _, r := range rows {
			keyOf[r.order.OrderNo] = r.key
		}
		for i := start; i < end; i++ {
			if keys[i] = keyOf[orders[i].OrderNo]; keys[i] == "" {
				return fmt.Errorf("read back order %s from %s: not found", orders[i].OrderNo, om.m.Table)
			}
		}
	}
	if err := s.registerState(db, keys, orders); err != nil {
		return err
	}
	states, err := s.readState(db, keys)
	if err != nil {
		return err
	}
	for i := range orders {
		orders[i].ID = states[keys[i]].ID
	}
	return nil
}
