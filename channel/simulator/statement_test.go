package simulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
)

// dayOrders are 200 orders created through 2024-03-01 (Shanghai time), the
// last few just before midnight.
func dayOrders(loc *time.Location) *Orders {
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, loc)
	src := NewOrders()
	for i := 0; i < 200; i++ {
		created := start.Add(time.Duration(i) * 7 * time.Minute)
		if i >= 195 {
			created = start.Add(24*time.Hour - time.Duration(200-i)*10*time.Second)
		}
		src.Add(recon.Order{OrderNo: fmt.Sprintf("ST%04d", i), Amount: int64(1000 + i), Currency: "CNY",
			Status: recon.StatusPending, CreatedAt: created.UTC()})
	}
	return src
}

func TestStatementLinesFollowOutcomesAndPlantEveryCase(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Seed: 7, PaidRate: 0.6, FailedRate: 0.1, ClosedRate: 0.1, AmountTamperRate: 0.05, FeeRate: 0.006}
	sim := New(cfg)
	src := dayOrders(loc)
	sim.SetStatementOrders(src)
	ctx := context.Background()
	lines, err := sim.StatementLines(ctx, "2024-03-01", loc)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := New(cfg).withOrders(src).StatementLines(ctx, "2024-03-01", loc)
	if !reflect.DeepEqual(lines, again) {
		t.Fatal("the same seed gave another statement")
	}
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, loc)
	var payments, refunds, unknown, short, feeOff, unconfirmed int
	paidSeen := map[string]bool{}
	refunded := map[string]int64{}
	for i, l := range lines {
		if l.LineNo != i+1 {
			t.Fatalf("line %d numbered %d", i+1, l.LineNo)
		}
		if err := l.Validate(); err != nil {
			t.Fatal(err)
		}
		if l.OccurredAt.Before(start) || !l.OccurredAt.Before(start.AddDate(0, 0, 1)) {
			t.Errorf("line %d at %s is not in the day", l.LineNo, l.OccurredAt)
		}
		o, known, _ := src.OrderByNo(ctx, l.OrderNo)
		if !known {
			unknown++
			continue
		}
		if l.Kind == recon.LineRefund {
			refunds++
			refunded[l.OrderNo] += l.Amount
			continue
		}
		res, err := sim.Lookup(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status == recon.ChannelPending {
			unconfirmed++ // the planted line the channel's lookup does not confirm
			continue
		}
		payments++
		paidSeen[l.OrderNo] = true
		if res.Status != recon.ChannelPaid || res.TxnID != l.ChannelTxnID || !res.PaidAt.Equal(l.OccurredAt) {
			t.Errorf("order %s: statement says paid %s at %s, lookup %+v", o.OrderNo, l.ChannelTxnID, l.OccurredAt, res)
		}
		if res.Amount != l.Amount {
			short++
		}
		if l.Fee != sim.fee(l.Amount) {
			feeOff++
		}
	}
	if unknown != 1 || short != 1 || feeOff != 1 || unconfirmed != 1 {
		t.Errorf("planted: %d unknown, %d short, %d fee off, %d unconfirmed; want 1 each", unknown, short, feeOff, unconfirmed)
	}
	var over, unpaidRefund, fine int
	for no, amount := range refunded {
		o, _, _ := src.OrderByNo(ctx, no)
		switch {
		case !paidSeen[no]:
			unpaidRefund++
		case amount > o.Amount:
			over++
		default:
			fine++
		}
	}
	if over != 1 || unpaidRefund != 1 || fine != 1 || refunds != 4 {
		t.Errorf("refunds: %d over, %d of unpaid, %d fine, %d lines", over, unpaidRefund, fine, refunds)
	}
	// Every order the channel holds paid in the day is on it but one.
	missing := 0
	_ = src.OrdersCreated(ctx, start.Add(-time.Hour), start.AddDate(0, 0, 1), func(o recon.Order) error {
		st, _, _ := sim.settled(o)
		at := sim.paidAt(o)
		if st == recon.ChannelPaid && !at.Before(start) && at.Before(start.AddDate(0, 0, 1)) && !paidSeen[o.OrderNo] {
			missing++
		}
		return nil
	})
	if missing != 1 {
		t.Errorf("%d paid orders of the day left out, want 1", missing)
	}

	clean, _ := New(Config{Seed: 7, PaidRate: 0.6, FailedRate: 0.1, ClosedRate: 0.1, AmountTamperRate: 0.05, CleanStatements: true}).
		withOrders(src).StatementLines(ctx, "2024-03-01", loc)
	if len(clean) != payments+1 {
		t.Errorf("clean statement: %d lines, want %d", len(clean), payments+1)
	}
}

func (s *Sim) withOrders(src StatementOrders) *Sim { s.SetStatementOrders(src); return s }

func TestStatementOverHTTPIsTheInProcessOne(t *testing.T) {
	loc := time.UTC
	sim := New(Config{Seed: 3, PaidRate: 0.7, Secret: "s3cret"})
	sim.SetStatementOrders(dayOrders(loc))
	srv := httptest.NewServer(sim.Server(NewOrders(), Keys{}))
	defer srv.Close()
	c, err := httpjson.New(httpjson.Config{Name: "bank", BaseURL: srv.URL, Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var remote, local bytes.Buffer
	if _, err := c.FetchStatement(ctx, "2024-03-01", &remote); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.FetchStatement(ctx, "2024-03-01", &local); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(remote.Bytes(), local.Bytes()) {
		t.Fatal("the HTTP statement differs from the in-process one")
	}
	want, _ := sim.StatementLines(ctx, "2024-03-01", loc)
	var got []recon.StatementLine
	if _, err := c.ParseStatement(bytes.NewReader(remote.Bytes()), int64(remote.Len()), "2024-03-01", loc, func(l recon.StatementLine) error {
		got = append(got, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i].LineNo = i + 2 // after the header row
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %d lines, want %d:\n%+v\n%+v", len(got), len(want), got[:2], want[:2])
	}

	wrong, _ := httpjson.New(httpjson.Config{Name: "bank", BaseURL: srv.URL, Secret: "other"})
	if _, err := wrong.FetchStatement(ctx, "2024-03-01", io.Discard); !errors.Is(err, channel.ErrBadSignature) {
		t.Errorf("wrong secret: %v", err)
	}
	none := New(Config{Seed: 3})
	srv2 := httptest.NewServer(none.Server(NewOrders(), Keys{}))
	defer srv2.Close()
	c2, _ := httpjson.New(httpjson.Config{Name: "bank", BaseURL: srv2.URL, Secret: DefaultSecret})
	if _, err := c2.FetchStatement(ctx, "2024-03-01", io.Discard); !errors.Is(err, channel.ErrNoStatement) {
		t.Errorf("no statement: %v", err)
	}
}

// A late payment a statement lists has settled at the channel: the lookup
// the statement line asks for confirms it, however few lookups it had.
func TestStatementSettlesTheLatePaymentsItLists(t *testing.T) {
	loc := time.UTC
	sim := New(Config{Seed: 2, LateRate: 1, LateAfter: 5, CleanStatements: true})
	src := dayOrders(loc)
	sim.SetStatementOrders(src)
	ctx := context.Background()
	lines, err := sim.StatementLines(ctx, "2024-03-01", loc)
	if err != nil || len(lines) == 0 {
		t.Fatalf("%d lines, %v", len(lines), err)
	}
	for _, l := range lines {
		o, _, _ := src.OrderByNo(ctx, l.OrderNo)
		res, err := sim.Lookup(ctx, o)
		if err != nil || res.Status != recon.ChannelPaid || res.TxnID != l.ChannelTxnID || res.Amount != l.Amount {
			t.Fatalf("order %s listed paid, its first lookup: %+v %v", o.OrderNo, res, err)
		}
	}
	// An order the statement does not list (paid after midnight) is still
	// late at its lookups.
	listed := map[string]bool{}
	for _, l := range lines {
		listed[l.OrderNo] = true
	}
	unlisted := 0
	for i := 195; i < 200; i++ {
		o, _, _ := src.OrderByNo(ctx, fmt.Sprintf("ST%04d", i))
		if listed[o.OrderNo] {
			continue
		}
		unlisted++
		if res, _ := sim.Lookup(ctx, o); res.Status != recon.ChannelPending {
			t.Errorf("order %s, not on the statement: %+v", o.OrderNo, res)
		}
	}
	if unlisted == 0 {
		t.Fatal("every order of the day was paid within it: nothing shows an unlisted late order")
	}
}
