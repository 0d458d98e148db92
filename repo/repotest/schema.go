package repotest

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// Schema is the orders table a test runs on: recon's own payment_orders
// (Mapping nil), or a team's existing table that Create makes and Mapping
// maps (config key orders).
type Schema struct {
	Name    string
	Create  map[repo.Dialect][]string
	Mapping *repo.OrderMapping
	// Refunds maps the team's refunds table beside Mapping's (config key
	// refunds); nil keeps recon's own refund_orders.
	Refunds *repo.RefundMapping
	// Prepare turns an order into what the team's payment service would
	// write (lower-case currency, ...) before it is seeded.
	Prepare func(*recon.Order)
}

// Own is recon's own payment_orders table.
var Own = Schema{Name: "own"}

// SchemaA is a table shaped like the open-source payment systems': a string
// key that is the order number, integer status codes with two pending
// values (0 created, 1 paying) and two statuses recon never touches (4
// revoked, 5 refunded), lower-case currency, amounts in fen, no version
// column, TIMESTAMP(3) ... ON UPDATE columns.
var SchemaA = Schema{
	Name: "mappedA",
	Create: map[repo.Dialect][]string{
		repo.MySQL: {`CREATE TABLE t_pay_order (
  pay_order_id     VARCHAR(30)  NOT NULL,
  mch_no           VARCHAR(64)  NOT NULL,
  if_code          VARCHAR(20)  NOT NULL,
  amount           BIGINT       NOT NULL,
  currency         VARCHAR(3)   NOT NULL DEFAULT 'cny',
  state            TINYINT      NOT NULL DEFAULT 0,
  channel_order_no VARCHAR(64)  NULL,
  success_time     DATETIME     NULL,
  created_at       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (pay_order_id),
  KEY idx_mch (mch_no, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`},
		repo.SQLite: {`CREATE TABLE t_pay_order (
  pay_order_id     VARCHAR(30)  NOT NULL PRIMARY KEY,
  mch_no           VARCHAR(64)  NOT NULL,
  if_code          VARCHAR(20)  NOT NULL,
  amount           BIGINT       NOT NULL,
  currency         VARCHAR(3)   NOT NULL DEFAULT 'cny',
  state            TINYINT      NOT NULL DEFAULT 0,
  channel_order_no VARCHAR(64)  NULL,
  success_time     DATETIME     NULL,
  created_at       TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at       TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP
)`},
	},
	Mapping: &repo.OrderMapping{
		Table: "t_pay_order",
		Columns: repo.OrderColumns{ID: "pay_order_id", OrderNo: "pay_order_id", MerchantID: "mch_no", Channel: "if_code",
			ChannelTxnID: "channel_order_no", Amount: "amount", Currency: "currency", Status: "state",
			CreatedAt: "created_at", UpdatedAt: "updated_at", PaidAt: "success_time"},
		StatusValues:  map[string][]string{"PENDING": {"0", "1"}, "PAID": {"2"}, "FAILED": {"3"}, "CLOSED": {"6"}},
		OtherTerminal: []string{"4", "5"},
		ChannelValues: map[string]string{"wx_sim": "sim"},
	},
	Prepare: func(o *recon.Order) { o.Currency = strings.ToLower(o.Currency) },
}

// SchemaB is a table with an integer key and a separate order number,
// DECIMAL(12,2) amounts in yuan, string statuses (INIT and PAYING pending),
// a version column and TIMESTAMP(3) ... ON UPDATE CURRENT_TIMESTAMP(3).
var SchemaB = Schema{
	Name: "mappedB",
	Create: map[repo.Dialect][]string{
		repo.MySQL: {`CREATE TABLE pay_orders (
  id           BIGINT        NOT NULL AUTO_INCREMENT,
  out_trade_no VARCHAR(64)   NOT NULL,
  merchant_code VARCHAR(64)  NOT NULL,
  pay_channel  VARCHAR(32)   NOT NULL,
  trade_no     VARCHAR(128)  NULL,
  total_amount DECIMAL(12,2) NOT NULL,
  currency     CHAR(3)       NOT NULL,
  status       VARCHAR(16)   NOT NULL DEFAULT 'INIT',
  version      INT           NOT NULL DEFAULT 0,
  create_time  TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  update_time  TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  pay_time     TIMESTAMP(3)  NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_out_trade_no (out_trade_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`},
		repo.SQLite: {`CREATE TABLE pay_orders (
  id           INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
  out_trade_no VARCHAR(64)   NOT NULL UNIQUE,
  merchant_code VARCHAR(64)  NOT NULL,
  pay_channel  VARCHAR(32)   NOT NULL,
  trade_no     VARCHAR(128)  NULL,
  total_amount DECIMAL(12,2) NOT NULL,
  currency     CHAR(3)       NOT NULL,
  status       VARCHAR(16)   NOT NULL DEFAULT 'INIT',
  version      INT           NOT NULL DEFAULT 0,
  create_time  TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time  TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  pay_time     TIMESTAMP     NULL
)`},
	},
	Mapping: &repo.OrderMapping{
		Table: "pay_orders",
		Columns: repo.OrderColumns{ID: "id", OrderNo: "out_trade_no", MerchantID: "merchant_code", Channel: "pay_channel",
			ChannelTxnID: "trade_no", Amount: "total_amount", Currency: "currency", Status: "status", Version: "version",
			CreatedAt: "create_time", UpdatedAt: "update_time", PaidAt: "pay_time"},
		AmountScale:  2,
		StatusValues: map[string][]string{"PENDING": {"INIT", "PAYING"}, "PAID": {"SUCCESS"}, "FAILED": {"FAILED"}, "CLOSED": {"CLOSED"}},
	},
}

// SchemaJeepay is Jeepay's t_pay_order (as SchemaA) with its t_refund_order
// beside it, mapped as CONTRACT §10 shows: a string key refund_order_id,
// pay_order_id naming the order, refund_amount in fen, lower-case currency,
// state 0 created / 1 refunding / 2 success / 3 failed / 4 closed and no
// version column. The table has the columns recon maps, with Jeepay's types
// (docs/sql/init.sql); the others are the payment service's alone.
var SchemaJeepay = Schema{
	Name: "jeepay",
	Create: map[repo.Dialect][]string{
		repo.MySQL: append(append([]string(nil), SchemaA.Create[repo.MySQL]...), `CREATE TABLE t_refund_order (
  refund_order_id  VARCHAR(30)  NOT NULL,
  pay_order_id     VARCHAR(30)  NOT NULL,
  mch_no           VARCHAR(64)  NOT NULL,
  if_code          VARCHAR(20)  NOT NULL,
  refund_amount    BIGINT(20)   NOT NULL,
  currency         VARCHAR(3)   NOT NULL DEFAULT 'cny',
  state            TINYINT(6)   NOT NULL DEFAULT '0',
  channel_order_no VARCHAR(32)  DEFAULT NULL,
  success_time     DATETIME     DEFAULT NULL,
  created_at       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (refund_order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`),
		repo.SQLite: append(append([]string(nil), SchemaA.Create[repo.SQLite]...), `CREATE TABLE t_refund_order (
  refund_order_id  VARCHAR(30)  NOT NULL PRIMARY KEY,
  pay_order_id     VARCHAR(30)  NOT NULL,
  mch_no           VARCHAR(64)  NOT NULL,
  if_code          VARCHAR(20)  NOT NULL,
  refund_amount    BIGINT(20)   NOT NULL,
  currency         VARCHAR(3)   NOT NULL DEFAULT 'cny',
  state            TINYINT(6)   NOT NULL DEFAULT '0',
  channel_order_no VARCHAR(32)  DEFAULT NULL,
  success_time     DATETIME     DEFAULT NULL,
  created_at       TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at       TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP
)`),
	},
	Mapping: SchemaA.Mapping,
	Refunds: &repo.RefundMapping{
		Table: "t_refund_order",
		Columns: repo.RefundColumns{ID: "refund_order_id", RefundNo: "refund_order_id", OrderID: "pay_order_id",
			MerchantID: "mch_no", Channel: "if_code", ChannelRefundID: "channel_order_no", Amount: "refund_amount",
			Currency: "currency", Status: "state", CreatedAt: "created_at", UpdatedAt: "updated_at", SucceededAt: "success_time"},
		StatusValues:  map[string][]string{"PENDING": {"1"}, "SUCCEEDED": {"2"}, "FAILED": {"3", "4"}},
		ChannelValues: map[string]string{"wx_sim": "sim"},
	},
	Prepare: SchemaA.Prepare,
}

// RefundSchemas are the tables the refund tests run on: recon's own, and
// Jeepay's orders and refunds tables.
var RefundSchemas = []Schema{Own, SchemaJeepay}

// Schemas are the tables ForEachSchema runs a test on.
var Schemas = []Schema{Own, SchemaA, SchemaB}

// SchemaC is a table without a version column whose amounts are
// DECIMAL(12,2) yuan, with no currency column (every order is in the
// mapping's currency) and string statuses. Only the tests that concern
// such a table run on it (ForSchemas).
var SchemaC = Schema{
	Name: "mappedC",
	Create: map[repo.Dialect][]string{
		repo.MySQL: {`CREATE TABLE trade_orders (
  trade_no    VARCHAR(64)   NOT NULL,
  merchant    VARCHAR(64)   NOT NULL,
  channel     VARCHAR(32)   NOT NULL,
  amount      DECIMAL(12,2) NOT NULL,
  status      VARCHAR(16)   NOT NULL DEFAULT 'WAIT',
  created_at  DATETIME(3)   NOT NULL,
  PRIMARY KEY (trade_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`},
		repo.SQLite: {`CREATE TABLE trade_orders (
  trade_no    VARCHAR(64)   NOT NULL PRIMARY KEY,
  merchant    VARCHAR(64)   NOT NULL,
  channel     VARCHAR(32)   NOT NULL,
  amount      DECIMAL(12,2) NOT NULL,
  status      VARCHAR(16)   NOT NULL DEFAULT 'WAIT',
  created_at  DATETIME      NOT NULL
)`},
	},
	Mapping: &repo.OrderMapping{
		Table: "trade_orders",
		Columns: repo.OrderColumns{ID: "trade_no", OrderNo: "trade_no", MerchantID: "merchant", Channel: "channel",
			Amount: "amount", Status: "status", CreatedAt: "created_at"},
		AmountScale:  2,
		Currency:     "CNY",
		StatusValues: map[string][]string{"PENDING": {"WAIT"}, "PAID": {"DONE"}, "FAILED": {"FAIL"}, "CLOSED": {"SHUT"}},
	},
}

// ForEachSchema runs body on every database (ForEachDB) for each of
// Schemas: recon's own table and the two mapped ones, the same body for all.
func ForEachSchema(t *testing.T, body func(t *testing.T, db DB)) {
	t.Helper()
	ForSchemas(t, Schemas, body)
}

// ForSchemas is ForEachSchema on the schemas given.
func ForSchemas(t *testing.T, schemas []Schema, body func(t *testing.T, db DB)) {
	t.Helper()
	for _, sc := range schemas {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("sqlite", func(t *testing.T) {
				t.Parallel()
				body(t, NewSQLiteSchema(t, sc))
			})
			t.Run("mysql", func(t *testing.T) {
				t.Parallel()
				body(t, NewMySQLSchema(t, sc))
			})
		})
	}
}

// ForSchemasAndCluster is ForSchemas plus a subtest "galera" with one
// subtest per schema on the cluster of RECON_TEST_GALERA_DSNS (skipped,
// saying so, when it is not set), whose DB.Open and DB.OpenNode put the
// test's processes on different nodes.
func ForSchemasAndCluster(t *testing.T, schemas []Schema, body func(t *testing.T, db DB)) {
	t.Helper()
	ForSchemas(t, schemas, body)
	t.Run("galera", func(t *testing.T) {
		for _, sc := range schemas {
			t.Run(sc.Name, func(t *testing.T) {
				body(t, withSchema(t, NewGalera(t), sc))
			})
		}
	})
}

// withSchema creates the schema's table in db and reopens its store with
// the mapping.
func withSchema(t testing.TB, db DB, sc Schema) DB {
	t.Helper()
	db.Schema = sc
	if sc.Mapping == nil {
		return db
	}
	for _, st := range sc.Create[db.Dialect] {
		if err := db.Store.DB().Exec(st).Error; err != nil {
			t.Fatalf("create %s: %v", sc.Name, err)
		}
	}
	s, err := repo.Open(context.Background(), db.Dialect, db.DSN, repo.Options{Orders: sc.Mapping, Refunds: sc.Refunds})
	if err != nil {
		t.Fatalf("open %s with mapping %s: %v", db.Dialect, sc.Name, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	db.Store = s
	return db
}

// NewSQLiteSchema is NewSQLite with the schema's table.
func NewSQLiteSchema(t testing.TB, sc Schema) DB { return withSchema(t, NewSQLite(t), sc) }

// NewMySQLSchema is NewMySQL with the schema's table.
func NewMySQLSchema(t testing.TB, sc Schema) DB { return withSchema(t, NewMySQL(t), sc) }

// Seed inserts orders as the schema's payment service would write them
// (Prepare) and sets their ids; the callers' orders are left as they were
// otherwise.
func (d DB) Seed(t testing.TB, orders ...*recon.Order) {
	t.Helper()
	vals := make([]*recon.Order, len(orders))
	for i, o := range orders {
		v := *o
		if d.Schema.Prepare != nil {
			d.Schema.Prepare(&v)
		}
		vals[i] = &v
	}
	Seed(t, d.Store, vals...)
	for i := range orders {
		orders[i].ID = vals[i].ID
	}
}

// Move plays another writer (the payment service's callback): it moves
// order id to status to with the schema's own guarded update (the version
// bumped where there is one), as the team's code would, and reports
// whether it did.
func (d DB) Move(t testing.TB, s *repo.Store, id int64, to recon.Status) bool {
	t.Helper()
	m := d.Schema.Mapping
	if m == nil {
		res := s.DB().Exec("UPDATE payment_orders SET status = ?, version = version + 1 WHERE id = ? AND status = 'PENDING'", to, id)
		if res.Error != nil {
			t.Fatal(res.Error)
		}
		return res.RowsAffected == 1
	}
	set := m.Columns.Status + " = ?"
	if m.Columns.Version != "" {
		set += ", " + m.Columns.Version + " = " + m.Columns.Version + " + 1"
	}
	pending := m.StatusValues["PENDING"]
	res := s.DB().Exec("UPDATE "+m.Table+" SET "+set+" WHERE "+m.Columns.ID+" = ("+
		"SELECT order_key FROM recon_order_state WHERE id = ?) AND "+m.Columns.Status+" IN ?",
		m.StatusValues[string(to)][0], id, pending)
	if res.Error != nil {
		t.Fatal(res.Error)
	}
	return res.RowsAffected == 1
}

// Touch changes order id under recon's feet while it stays PENDING: a new
// version, or without a version column the second pending value (created ->
// paying).
func (d DB) Touch(t testing.TB, s *repo.Store, id int64) {
	t.Helper()
	m := d.Schema.Mapping
	var err error
	switch {
	case m == nil:
		err = s.DB().Exec("UPDATE payment_orders SET version = version + 1 WHERE id = ?", id).Error
	case m.Columns.Version != "":
		err = s.DB().Exec("UPDATE "+m.Table+" SET "+m.Columns.Version+" = "+m.Columns.Version+" + 1 WHERE "+m.Columns.ID+
			" = (SELECT order_key FROM recon_order_state WHERE id = ?)", id).Error
	default:
		err = s.DB().Exec("UPDATE "+m.Table+" SET "+m.Columns.Status+" = ? WHERE "+m.Columns.ID+
			" = (SELECT order_key FROM recon_order_state WHERE id = ?)", m.StatusValues["PENDING"][1], id).Error
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Reprice plays the payment service changing order id's amount to amount
// and, when currency is not "" and the table has a currency column, its
// currency, while the order stays PENDING, as the team's code would: the
// version bumped where there is one, nothing else.
func (d DB) Reprice(t testing.TB, s *repo.Store, id, amount int64, currency string) {
	t.Helper()
	m := d.Schema.Mapping
	if m == nil {
		set, args := "amount = ?, version = version + 1", []any{amount}
		if currency != "" {
			set, args = set+", currency = ?", append(args, currency)
		}
		if err := s.DB().Exec("UPDATE payment_orders SET "+set+" WHERE id = ?", append(args, id)...).Error; err != nil {
			t.Fatal(err)
		}
		return
	}
	var value any = amount
	if m.AmountScale > 0 {
		value = strconv.FormatFloat(float64(amount)/math.Pow10(m.AmountScale), 'f', m.AmountScale, 64)
	}
	set, args := m.Columns.Amount+" = ?", []any{value}
	if currency != "" && m.Columns.Currency != "" {
		set, args = set+", "+m.Columns.Currency+" = ?", append(args, currency)
	}
	if m.Columns.Version != "" {
		set += ", " + m.Columns.Version + " = " + m.Columns.Version + " + 1"
	}
	err := s.DB().Exec("UPDATE "+m.Table+" SET "+set+" WHERE "+m.Columns.ID+
		" = (SELECT order_key FROM recon_order_state WHERE id = ?)", append(args, id)...).Error
	if err != nil {
		t.Fatal(err)
	}
}

// MoveRefund plays the payment service settling refund refundNo itself: it
// moves the refund to status to (SUCCEEDED or FAILED) if it is still
// PENDING, with the schema's own update, and reports whether it did.
func (d DB) MoveRefund(t testing.TB, s *repo.Store, refundNo string, to recon.RefundStatus) bool {
	t.Helper()
	m := d.Schema.Refunds
	q, args := "UPDATE refund_orders SET status = ?, version = version + 1 WHERE refund_no = ? AND status = 'PENDING'", []any{to, refundNo}
	if m != nil {
		q = "UPDATE " + m.Table + " SET " + m.Columns.Status + " = ? WHERE " + m.Columns.RefundNo + " = ? AND " + m.Columns.Status + " IN ?"
		args = []any{m.StatusValues[string(to)][0], refundNo, m.StatusValues["PENDING"]}
	}
	res := s.DB().Exec(q, args...)
	if res.Error != nil {
		t.Fatal(res.Error)
	}
	return res.RowsAffected == 1
}

// RepriceRefund plays the payment service changing refund refundNo's
// amount while it stays PENDING (the version bumped where there is one).
func (d DB) RepriceRefund(t testing.TB, s *repo.Store, refundNo string, amount int64) {
	t.Helper()
	m := d.Schema.Refunds
	q := "UPDATE refund_orders SET amount = ?, version = version + 1 WHERE refund_no = ?"
	if m != nil {
		q = "UPDATE " + m.Table + " SET " + m.Columns.Amount + " = ? WHERE " + m.Columns.RefundNo + " = ?"
	}
	if err := s.DB().Exec(q, amount, refundNo).Error; err != nil {
		t.Fatal(err)
	}
}
