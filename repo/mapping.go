package repo

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// OrderMapping maps recon's order fields onto a team's existing orders table
// (config key orders, CONTRACT §7). recon reads that table and moves its
// orders through the guarded update; it never alters the table. Its own
// per-order bookkeeping lives in recon_order_state, keyed by the table's id.
type OrderMapping struct {
	Table   string       `yaml:"table"`
	Columns OrderColumns `yaml:"columns"`
	// AmountScale is the number of decimals the amount column holds: 0 for
	// integer minor units, 2 for DECIMAL(12,2) yuan or dollars.
	AmountScale int `yaml:"amount_scale"`
	// Currency is the currency of every order when there is no currency
	// column.
	Currency string `yaml:"currency"`
	// StatusValues lists, for each of PENDING, PAID, FAILED and CLOSED, the
	// column values that mean it. The first value is the one recon writes.
	StatusValues map[string][]string `yaml:"status_values"`
	// OtherTerminal lists values recon never touches (refunded, revoked).
	OtherTerminal []string `yaml:"other_terminal"`
	// ChannelValues maps a channel column value to a channels[].name; a
	// value not listed is the name itself.
	ChannelValues map[string]string `yaml:"channel_values"`

	// kind is what the table holds; nil is orders (a RefundMapping sets
	// refunds).
	kind *tableKind
}

// tableKind is what differs between a mapped orders table and a mapped
// refunds table; everything else is the same code.
type tableKind struct {
	key      string         // the config key: orders, refunds
	statuses []recon.Status // the keys of status_values, PENDING first
	state    string         // recon's bookkeeping table
	parent   string         // refunds: the column naming the refunded order
	// names are the config keys of columns whose names differ from an
	// order's (refund_no for order_no, ...).
	names map[string]string
}

var ordersKind = &tableKind{key: "orders", statuses: mappedStatuses, state: "recon_order_state"}

func (m OrderMapping) tk() *tableKind {
	if m.kind == nil {
		return ordersKind
	}
	return m.kind
}

// OrderColumns names the columns of the mapped table; "" is absent.
type OrderColumns struct {
	ID           string `yaml:"id"`
	OrderNo      string `yaml:"order_no"`
	MerchantID   string `yaml:"merchant_id"`
	Channel      string `yaml:"channel"`
	ChannelTxnID string `yaml:"channel_txn_id"`
	Amount       string `yaml:"amount"`
	Currency     string `yaml:"currency"`
	Status       string `yaml:"status"`
	Version      string `yaml:"version"`
	CreatedAt    string `yaml:"created_at"`
	UpdatedAt    string `yaml:"updated_at"`
	PaidAt       string `yaml:"paid_at"`
}

// RefundMapping maps recon's refund fields onto a team's existing refunds
// table (config key refunds, CONTRACT §10), as OrderMapping maps orders: the
// same checks, reads and guarded update, never altering the table; recon's
// bookkeeping of each refund lives in recon_refund_state. A refund's order
// is found in the mapped orders table by the order_id column.
type RefundMapping struct {
	Table       string        `yaml:"table"`
	Columns     RefundColumns `yaml:"columns"`
	AmountScale int           `yaml:"amount_scale"`
	Currency    string        `yaml:"currency"`
	// StatusValues lists, for each of PENDING, SUCCEEDED and FAILED, the
	// column values that mean it. The first value is the one recon writes;
	// values not listed are left alone.
	StatusValues  map[string][]string `yaml:"status_values"`
	ChannelValues map[string]string   `yaml:"channel_values"`
}

// RefundColumns names the columns of the mapped refunds table; "" is absent.
type RefundColumns struct {
	ID              string `yaml:"id"`
	RefundNo        string `yaml:"refund_no"`
	OrderID         string `yaml:"order_id"`
	MerchantID      string `yaml:"merchant_id"`
	Channel         string `yaml:"channel"`
	ChannelRefundID string `yaml:"channel_refund_id"`
	Amount          string `yaml:"amount"`
	Currency        string `yaml:"currency"`
	Status          string `yaml:"status"`
	Version         string `yaml:"version"`
	CreatedAt       string `yaml:"created_at"`
	UpdatedAt       string `yaml:"updated_at"`
	SucceededAt     string `yaml:"succeeded_at"`
}

// refundStatuses are the keys of a refunds mapping's status_values.
var refundStatuses = []recon.Status{recon.StatusPending, recon.Status(recon.RefundSucceeded), recon.Status(recon.RefundFailed)}

// asOrders is the mapping as the order code reads it: a refund's number in
// the order number's place, its channel refund id in the transaction id's,
// its success time in the paid time's.
func (m RefundMapping) asOrders() OrderMapping {
	c := m.Columns
	return OrderMapping{
		Table: m.Table,
		Columns: OrderColumns{ID: c.ID, OrderNo: c.RefundNo, MerchantID: c.MerchantID, Channel: c.Channel,
			ChannelTxnID: c.ChannelRefundID, Amount: c.Amount, Currency: c.Currency, Status: c.Status,
			Version: c.Version, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, PaidAt: c.SucceededAt},
		AmountScale: m.AmountScale, Currency: m.Currency, StatusValues: m.StatusValues, ChannelValues: m.ChannelValues,
		kind: &tableKind{key: "refunds", statuses: refundStatuses, state: "recon_refund_state", parent: c.OrderID,
			names: map[string]string{"order_no": "refund_no", "channel_txn_id": "channel_refund_id", "paid_at": "succeeded_at"}},
	}
}

// Validate checks the mapping without a database, as OrderMapping's does.
func (m RefundMapping) Validate() error { return m.asOrders().Validate() }

// RecommendedIndex is the index recon recommends on the mapped refunds
// table, as OrderMapping's.
func (m RefundMapping) RecommendedIndex() string { return m.asOrders().RecommendedIndex() }

// MappingError is a mapping that cannot work; Key is relative to the orders
// key ("columns.amount", "status_values.PENDING").
type MappingError struct {
	// Section is the config key of the mapping: orders (when empty) or
	// refunds.
	Section string
	Key     string
	Msg     string
}

func (e *MappingError) Error() string { return e.FullKey() + ": " + e.Msg }

// FullKey is the config key the error names ("refunds.columns.amount").
func (e *MappingError) FullKey() string {
	sec := e.Section
	if sec == "" {
		sec = "orders"
	}
	return sec + "." + e.Key
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,63}$`)

// mappedStatuses are the keys of status_values, in the order they are checked.
var mappedStatuses = []recon.Status{recon.StatusPending, recon.StatusPaid, recon.StatusFailed, recon.StatusClosed}

// mappedColumn is one column of a mapping: key is recon's internal name of
// it (an order's), show the config key (a refund's names for a refunds
// table).
type mappedColumn struct {
	key, show, name string
	required        bool
}

// columns returns the columns with their keys, required ones flagged.
func (m OrderMapping) columns() []mappedColumn {
	c, tk := m.Columns, m.tk()
	out := []mappedColumn{
		{"id", "", c.ID, true}, {"order_no", "", c.OrderNo, true}, {"merchant_id", "", c.MerchantID, true},
		{"channel", "", c.Channel, true}, {"channel_txn_id", "", c.ChannelTxnID, false}, {"amount", "", c.Amount, true},
		{"currency", "", c.Currency, false}, {"status", "", c.Status, true}, {"version", "", c.Version, false},
		{"created_at", "", c.CreatedAt, true}, {"updated_at", "", c.UpdatedAt, false}, {"paid_at", "", c.PaidAt, false},
	}
	if tk != ordersKind {
		out = append(out, mappedColumn{"order_id", "", tk.parent, true})
	}
	for i := range out {
		out[i].show = out[i].key
		if name, ok := tk.names[out[i].key]; ok {
			out[i].show = name
		}
	}
	return out
}

// Validate checks the mapping without a database: names, scale, currency,
// and status values each meaning one thing.
func (m OrderMapping) Validate() error {
	tk := m.tk()
	bad := func(key, format string, args ...any) error {
		return &MappingError{Section: tk.key, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	table := strings.Split(m.Table, ".")
	if m.Table == "" || len(table) > 2 {
		return bad("table", "is required (a table name, or schema.table)")
	}
	for _, p := range table {
		if !identRE.MatchString(p) {
			return bad("table", "%q is not a plain SQL identifier", m.Table)
		}
	}
	for _, c := range m.columns() {
		if c.name == "" {
			if c.required {
				return bad("columns."+c.show, "is required")
			}
			continue
		}
		if !identRE.MatchString(c.name) {
			return bad("columns."+c.show, "%q is not a plain SQL identifier", c.name)
		}
	}
	if m.AmountScale < 0 || m.AmountScale > 6 {
		return bad("amount_scale", "must be between 0 and 6 (got %d)", m.AmountScale)
	}
	switch {
	case m.Columns.Currency == "" && m.Currency == "":
		return bad("currency", "is required when there is no currency column (columns.currency)")
	case m.Columns.Currency != "" && m.Currency != "":
		return bad("currency", "set either a currency column (columns.currency) or a fixed currency, not both")
	case m.Currency != "" && !recon.ValidCurrency(strings.ToUpper(m.Currency)):
		return bad("currency", "%q is not an ISO 4217 code", m.Currency)
	}
	seen := map[string]string{}
	claim := func(key, v string) error {
		if strings.TrimSpace(v) == "" {
			return bad(key, "has an empty value")
		}
		if prev, ok := seen[v]; ok {
			return bad(key, "value %q already means %s", v, prev)
		}
		seen[v] = key
		return nil
	}
	want := make([]string, len(tk.statuses))
	for i, st := range tk.statuses {
		want[i] = string(st)
	}
	for k := range m.StatusValues {
		if !slices.Contains(want, k) {
			return bad("status_values."+k, "unknown status (want %s)", strings.Join(want, ", "))
		}
	}
	for _, st := range tk.statuses {
		key := "status_values." + string(st)
		vals := m.StatusValues[string(st)]
		if len(vals) == 0 {
			return bad(key, "is required: the column values that mean %s", st)
		}
		for _, v := range vals {
			if err := claim(key, v); err != nil {
				return err
			}
		}
	}
	for _, v := range m.OtherTerminal {
		if err := claim("other_terminal", v); err != nil {
			return err
		}
	}
	for v, name := range m.ChannelValues {
		if v == "" || name == "" {
			return bad("channel_values", "has an empty value or channel name")
		}
	}
	return nil
}

// orderMap is a validated mapping checked against the live table: the one
// place that renders the team's table and column names and converts its
// values.
type orderMap struct {
	m    OrderMapping
	kind *tableKind
	// quoted names; "" for an absent column (parent: a refund's order)
	table, parent, id, no, merchant, channel, txn, amount, currency, status, version, created, updated, paid string

	intKey    bool // the id column is an integer
	intStatus bool // the status column is an integer
	toStatus  map[string]recon.Status
	other     map[string]bool
	pending   []any                // the PENDING values, typed for the column
	write     map[recon.Status]any // the value written for each terminal status
	chanOut   map[string]string    // column value -> channel name
	chanIn    map[string][]string
}

func quoteIdent(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = "`" + p + "`"
	}
	return strings.Join(parts, ".")
}

// colInfo is what the live table says about one column.
type colInfo struct {
	typ    string // lower-case base type: int, bigint, decimal, varchar, datetime...
	scale  int
	length int
}

func (c colInfo) isInt() bool { return strings.Contains(c.typ, "int") }
func (c colInfo) isDecimal() bool {
	return c.typ == "decimal" || c.typ == "numeric"
}
func (c colInfo) isText() bool {
	return c.typ == "" || strings.Contains(c.typ, "char") || strings.Contains(c.typ, "text") || strings.Contains(c.typ, "clob")
}
func (c colInfo) isTime(d Dialect) bool {
	if c.typ == "datetime" || c.typ == "timestamp" {
		return true
	}
	return d == SQLite && (c.typ == "" || c.isText())
}

var typeRE = regexp.MustCompile(`^\s*([A-Za-z ]+?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*(?:unsigned|signed)?\s*$`)

// tableColumns reads the live table's columns (lower-case names).
func tableColumns(ctx context.Context, db *gorm.DB, d Dialect, table string) (map[string]colInfo, error) {
	out := map[string]colInfo{}
	if d == MySQL {
		schema, name := "", table
		if s, n, ok := strings.Cut(table, "."); ok {
			schema, name = s, n
		}
		var rows []struct {
			Name   string
			Typ    string
			Scale  int
			Length int64
		}
		err := db.WithContext(ctx).Raw(`SELECT COLUMN_NAME AS name, LOWER(DATA_TYPE) AS typ,
			COALESCE(NUMERIC_SCALE, 0) AS scale,
			COALESCE(CHARACTER_MAXIMUM_LENGTH, CASE WHEN DATA_TYPE IN ('decimal', 'numeric') THEN NUMERIC_PRECISION END, 0) AS length
			FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ?`, schema, name).Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("read the columns of %s: %w", table, err)
		}
		for _, r := range rows {
			out[strings.ToLower(r.Name)] = colInfo{typ: r.Typ, scale: r.Scale, length: int(min(r.Length, 1<<30))}
		}
		return out, nil
	}
	var rows []struct {
		Name string
		Type string
	}
	if err := db.WithContext(ctx).Raw("SELECT name, type FROM pragma_table_info(?)", table).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	for _, r := range rows {
		ci := colInfo{}
		if m := typeRE.FindStringSubmatch(r.Type); m != nil {
			ci.typ = strings.ToLower(strings.TrimSpace(m[1]))
			if m[3] != "" {
				ci.length, _ = strconv.Atoi(m[2])
				ci.scale, _ = strconv.Atoi(m[3])
			} else if m[2] != "" {
				ci.length, _ = strconv.Atoi(m[2])
			}
		} else {
			ci.typ = strings.ToLower(r.Type)
		}
		out[strings.ToLower(r.Name)] = ci
	}
	return out, nil
}

// compileMapping checks m against the live table and returns the mapping
// recon works with. Its errors are *MappingError naming the key.
func compileMapping(ctx context.Context, db *gorm.DB, d Dialect, m OrderMapping) (*orderMap, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	tk := m.tk()
	bad := func(key, format string, args ...any) error {
		return &MappingError{Section: tk.key, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	cols, err := tableColumns(ctx, db, d, m.Table)
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, bad("table", "table %s does not exist in the configured database", m.Table)
	}
	info := map[string]colInfo{}
	for _, c := range m.columns() {
		if c.name == "" {
			continue
		}
		ci, ok := cols[strings.ToLower(c.name)]
		if !ok {
			return nil, bad("columns."+c.show, "table %s has no column %q", m.Table, c.name)
		}
		info[c.key] = ci
		need := ""
		switch c.key {
		case "id":
			if !ci.isInt() && !ci.isText() {
				need = "an integer or string column"
			} else if ci.isText() && ci.length > 64 {
				need = "a key of at most 64 characters (" + tk.state + ".order_key)"
			}
		case "order_no", "merchant_id", "channel", "order_id":
			if !ci.isInt() && !ci.isText() {
				need = "a string or integer column"
			}
		case "channel_txn_id":
			if !ci.isText() {
				need = "a string column"
			}
		case "currency":
			if !ci.isText() || (ci.length > 0 && ci.length < 3) {
				need = "a string column of at least 3 characters"
			}
		case "version":
			if !ci.isInt() {
				need = "an integer column"
			}
		case "created_at", "updated_at", "paid_at":
			if !ci.isTime(d) {
				need = "a DATETIME or TIMESTAMP column"
			}
		case "amount":
			switch {
			case m.AmountScale == 0 && !(ci.isInt() || (ci.isDecimal() && ci.scale == 0)):
				need = "an integer column for amount_scale 0 (set amount_scale to its number of decimals)"
			case m.AmountScale > 0 && !(ci.isDecimal() && ci.scale == m.AmountScale):
				need = fmt.Sprintf("a DECIMAL column with %d decimals for amount_scale %d", m.AmountScale, m.AmountScale)
			}
		case "status":
			if !ci.isInt() && !ci.isText() {
				need = "an integer or string column"
			}
		}
		if need != "" {
			return nil, bad("columns."+c.show, "column %s of %s is %s; recon needs %s", c.name, m.Table, describeType(ci), need)
		}
	}
	q := func(s string) string {
		if s == "" {
			return ""
		}
		return quoteIdent(s)
	}
	om := &orderMap{m: m, kind: tk, table: quoteIdent(m.Table), parent: q(tk.parent),
		intKey: info["id"].isInt(), intStatus: info["status"].isInt(),
		toStatus: map[string]recon.Status{}, other: map[string]bool{}, write: map[recon.Status]any{},
		chanOut: map[string]string{}, chanIn: map[string][]string{}}
	c := m.Columns
	om.id, om.no, om.merchant, om.channel, om.txn = q(c.ID), q(c.OrderNo), q(c.MerchantID), q(c.Channel), q(c.ChannelTxnID)
	om.amount, om.currency, om.status, om.version = q(c.Amount), q(c.Currency), q(c.Status), q(c.Version)
	om.created, om.updated, om.paid = q(c.CreatedAt), q(c.UpdatedAt), q(c.PaidAt)
	st := info["status"]
	typed := func(key, v string) (any, error) {
		if !om.intStatus {
			if st.length > 0 && len(v) > st.length {
				return nil, bad(key, "value %q does not fit column %s (%s)", v, c.Status, describeType(st))
			}
			return v, nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, bad(key, "value %q is not an integer, but column %s is %s", v, c.Status, describeType(st))
		}
		return n, nil
	}
	for _, s := range tk.statuses {
		key := "status_values." + string(s)
		for i, v := range m.StatusValues[string(s)] {
			tv, err := typed(key, v)
			if err != nil {
				return nil, err
			}
			om.toStatus[canonValue(tv)] = s
			if s == recon.StatusPending {
				om.pending = append(om.pending, tv)
			} else if i == 0 {
				om.write[s] = tv
			}
		}
	}
	for _, v := range m.OtherTerminal {
		tv, err := typed("other_terminal", v)
		if err != nil {
			return nil, err
		}
		om.other[canonValue(tv)] = true
	}
	for v, name := range m.ChannelValues {
		om.chanOut[v] = name
		om.chanIn[name] = append(om.chanIn[name], v)
	}
	for _, vs := range om.chanIn {
		sort.Strings(vs)
	}
	return om, nil
}

func describeType(ci colInfo) string {
	switch {
	case ci.typ == "":
		return "untyped"
	case ci.scale > 0:
		return fmt.Sprintf("%s(%d,%d)", strings.ToUpper(ci.typ), ci.length, ci.scale)
	case ci.length > 0:
		return fmt.Sprintf("%s(%d)", strings.ToUpper(ci.typ), ci.length)
	}
	return strings.ToUpper(ci.typ)
}

// canonValue is the text form of a status value, for lookups.
func canonValue(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []byte:
		return string(x)
	case string:
		return x
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// RecommendedIndex is the index recon recommends on the mapped table, on
// its status and creation columns, for finding new pending orders: a DBA
// applies it; recon never alters the team's table.
func (m OrderMapping) RecommendedIndex() string {
	name := "idx_" + strings.ReplaceAll(m.Table, ".", "_") + "_recon_due"
	if len(name) > 64 {
		name = name[:64]
	}
	return fmt.Sprintf("CREATE INDEX %s ON %s (%s, %s)", quoteIdent(name), quoteIdent(m.Table),
		quoteIdent(m.Columns.Status), quoteIdent(m.Columns.CreatedAt))
}

// Mapped reports whether orders live in a mapped table (config key orders).
func (s *Store) Mapped() bool { return s.orders != nil }

// TableDefinition returns the CREATE TABLE statement of table as the
// database describes it (SHOW CREATE TABLE, sqlite_master), for making an
// empty copy of it elsewhere (the benchmark's scratch database).
func (s *Store) TableDefinition(ctx context.Context, table string) (string, error) {
	var ddl string
	var err error
	if s.dialect == MySQL {
		var name string
		err = s.db.WithContext(ctx).Raw("SHOW CREATE TABLE "+quoteIdent(table)).Row().Scan(&name, &ddl)
	} else {
		err = s.db.WithContext(ctx).Raw("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", table).Row().Scan(&ddl)
	}
	if err != nil {
		return "", fmt.Errorf("read the definition of %s: %w", table, err)
	}
	return ddl, nil
}
