package simulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
)

// DefaultFeeRate is the share of each payment the simulated channel keeps as
// its fee when Config.FeeRate is zero.
const DefaultFeeRate = 0.006

// StatementOrders lists the orders a simulated statement may cover.
type StatementOrders interface {
	// OrdersCreated calls fn for every order created in [from, to).
	OrdersCreated(ctx context.Context, from, to time.Time, fn func(recon.Order) error) error
}

// StatementOrdersFunc adapts a function to StatementOrders.
type StatementOrdersFunc func(ctx context.Context, from, to time.Time, fn func(recon.Order) error) error

// OrdersCreated calls f.
func (f StatementOrdersFunc) OrdersCreated(ctx context.Context, from, to time.Time, fn func(recon.Order) error) error {
	return f(ctx, from, to, fn)
}

// OrdersCreated implements StatementOrders for the in-memory source.
func (s *Orders) OrdersCreated(_ context.Context, from, to time.Time, fn func(recon.Order) error) error {
	s.mu.Lock()
	var list []recon.Order
	for _, o := range s.byNo {
		if !o.CreatedAt.Before(from) && o.CreatedAt.Before(to) {
			list = append(list, o)
		}
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].OrderNo < list[j].OrderNo })
	for _, o := range list {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// SetStatementOrders gives the simulator the orders its statements are
// about; without them it has no statement to give.
func (s *Sim) SetStatementOrders(src StatementOrders) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stmtOrders = src
}

// SetStatementZone sets the time zone of the statement days FetchStatement
// and the HTTP statement answer (Config.StatementZone).
func (s *Sim) SetStatementZone(loc *time.Location) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if loc != nil {
		s.cfg.StatementZone = loc
	}
}

// ErrNoStatementSource: the simulator was given no orders to make statements of.
var ErrNoStatementSource = errors.New("simulator has no order source for statements")

// StatementLines is the channel's record of day (YYYY-MM-DD, a calendar day
// in loc): every order it holds as paid whose payment time falls in that
// day, with the amount and currency its lookups answer (tampered ones
// included), the transaction id and payment time of its lookups and a fee of
// Config.FeeRate, in time order. Unless Config.CleanStatements is set, the
// day carries planted discrepancies, chosen deterministically from the
// seed, so reconciliation shows each case:
//
//   - a payment of an order recon does not know (order number SIMX…);
//   - one paid order left out (local only);
//   - one paid order booked one minor unit short (amount mismatch);
//   - one paid order charged a fee off the rate;
//   - one paid order partly refunded (a refund that matches);
//   - one paid order refunded twice, more than was paid (over-refund);
//   - a refund of an order the channel never had paid;
//   - a payment of an order the channel still holds PENDING, which its
//     lookup does not confirm (a statement line is evidence, the lookup
//     decides).
//
// A late payment the statement lists has settled by the time the day's
// books close: from then on its lookups answer PAID too, so the lookup that
// a statement line asks for confirms it. An order whose answers are badly
// signed is listed paid, and its lookup still fails.
func (s *Sim) StatementLines(ctx context.Context, day string, loc *time.Location) ([]recon.StatementLine, error) {
	if loc == nil {
		loc = time.UTC
	}
	start, err := time.ParseInLocation(time.DateOnly, day, loc)
	if err != nil {
		return nil, fmt.Errorf("simulator: statement %q: day is not YYYY-MM-DD", day)
	}
	end := start.AddDate(0, 0, 1)
	s.mu.Lock()
	src := s.stmtOrders
	s.mu.Unlock()
	if src == nil {
		return nil, fmt.Errorf("simulator: statement %s: %w", day, ErrNoStatementSource)
	}
	type paidOrder struct {
		o    recon.Order
		line recon.StatementLine
	}
	var paid []paidOrder
	var unpaid, pending []recon.Order
	// paidAt is at most a minute after creation.
	err = src.OrdersCreated(ctx, start.Add(-2*time.Minute), end, func(o recon.Order) error {
		st, amount, currency := s.settled(o)
		switch st {
		case recon.ChannelPaid:
			at := s.paidAt(o)
			if at.Before(start) || !at.Before(end) {
				return nil
			}
			s.settle(o.OrderNo)
			paid = append(paid, paidOrder{o, recon.StatementLine{
				Kind: recon.LinePayment, OrderNo: o.OrderNo, ChannelTxnID: s.TxnID(o.OrderNo),
				Amount: amount, Fee: s.fee(amount), Currency: currency, OccurredAt: at,
			}})
		case recon.ChannelFailed, recon.ChannelClosed:
			if !o.CreatedAt.Before(start) {
				unpaid = append(unpaid, o)
			}
		case recon.ChannelPending:
			if !o.CreatedAt.Before(start) {
				pending = append(pending, o)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("simulator: statement %s: %w", day, err)
	}
	lines := make([]recon.StatementLine, 0, len(paid)+8)
	if s.cfg.CleanStatements {
		for _, p := range paid {
			lines = append(lines, p.line)
		}
	} else {
		rank := func(no string) uint64 { return s.hash(no, "statement", day) }
		sort.Slice(paid, func(i, j int) bool { return rank(paid[i].o.OrderNo) < rank(paid[j].o.OrderNo) })
		refund := func(p paidOrder, n int, amount int64) recon.StatementLine {
			at := p.line.OccurredAt.Add(time.Duration(n) * time.Hour)
			if !at.Before(end) {
				at = end.Add(-time.Second)
			}
			return recon.StatementLine{Kind: recon.LineRefund, OrderNo: p.o.OrderNo, ChannelTxnID: p.line.ChannelTxnID,
				RefundNo: fmt.Sprintf("RF%s-%d", p.o.OrderNo, n), Amount: amount, Currency: p.line.Currency, OccurredAt: at.UTC()}
		}
		for i, p := range paid {
			l := p.line
			switch i {
			case 0: // left out: local only
				continue
			case 1: // booked short
				l.Amount--
			case 2: // fee off the rate
				l.Fee += 7
			case 3: // partly refunded
				lines = append(lines, refund(p, 1, max(1, l.Amount/2)))
			case 4: // refunded more than paid
				lines = append(lines, refund(p, 1, l.Amount/2+1), refund(p, 2, l.Amount/2+1))
			}
			lines = append(lines, l)
		}
		if len(unpaid) > 0 {
			sort.Slice(unpaid, func(i, j int) bool { return rank(unpaid[i].OrderNo) < rank(unpaid[j].OrderNo) })
			o := unpaid[0]
			at := o.CreatedAt.Add(30 * time.Minute)
			if !at.Before(end) {
				at = end.Add(-time.Second)
			}
			lines = append(lines, recon.StatementLine{Kind: recon.LineRefund, OrderNo: o.OrderNo, ChannelTxnID: s.TxnID(o.OrderNo),
				RefundNo: "RF" + o.OrderNo + "-1", Amount: o.Amount, Currency: o.Currency, OccurredAt: at.UTC()})
		}
		if len(pending) > 0 {
			sort.Slice(pending, func(i, j int) bool { return rank(pending[i].OrderNo) < rank(pending[j].OrderNo) })
			o := pending[0]
			at := o.CreatedAt.Add(time.Minute)
			if !at.Before(end) {
				at = end.Add(-time.Second)
			}
			lines = append(lines, recon.StatementLine{Kind: recon.LinePayment, OrderNo: o.OrderNo, ChannelTxnID: s.TxnID(o.OrderNo),
				Amount: o.Amount, Fee: s.fee(o.Amount), Currency: o.Currency, OccurredAt: at.UTC()})
		}
		unknown := "SIMX" + strings.ReplaceAll(day, "-", "") + "01"
		amount := int64(1000 + s.hash(day, "channel-only")%99000)
		lines = append(lines, recon.StatementLine{Kind: recon.LinePayment, OrderNo: unknown, ChannelTxnID: s.TxnID(unknown),
			Amount: amount, Fee: s.fee(amount), Currency: "CNY", OccurredAt: start.Add(12 * time.Hour).UTC()})
	}
	sort.SliceStable(lines, func(i, j int) bool {
		a, b := lines[i], lines[j]
		if !a.OccurredAt.Equal(b.OccurredAt) {
			return a.OccurredAt.Before(b.OccurredAt)
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.ChannelTxnID != b.ChannelTxnID {
			return a.ChannelTxnID < b.ChannelTxnID
		}
		return a.RefundNo < b.RefundNo
	})
	for i := range lines {
		lines[i].LineNo = i + 1
	}
	return lines, nil
}

// settled is what the channel finally holds about o, with the amount and
// currency a paid answer carries.
func (s *Sim) settled(o recon.Order) (recon.ChannelStatus, int64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := s.behaviour(o)
	st := s.orders[o.OrderNo]
	status := b.Status
	switch {
	case st != nil && st.paid, b.PayOnClose, b.PaidAfterLookups > 0:
		status = recon.ChannelPaid
	case st != nil && st.closed:
		status = recon.ChannelClosed
	}
	if status != recon.ChannelPaid {
		return status, 0, ""
	}
	amount, currency := o.Amount, o.Currency
	if b.Amount != 0 {
		amount = b.Amount
	}
	if b.Currency != "" {
		currency = b.Currency
	}
	return recon.ChannelPaid, amount, currency
}

// settle records that the channel holds orderNo paid: its later lookups
// answer PAID (a late payment, or one found paid on close, that a statement
// lists).
func (s *Sim) settle(orderNo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state(orderNo).paid = true
}

// fee is the channel's fee for a payment of amount: Config.FeeRate of it,
// rounded half away from zero.
func (s *Sim) fee(amount int64) int64 {
	rate := s.cfg.FeeRate
	if rate == 0 {
		rate = DefaultFeeRate
	}
	return int64(math.Round(float64(amount) * rate))
}

var _ channel.Statements = (*Sim)(nil)

// FetchStatement writes the statement of day as the CSV of CONTRACT §6, in
// Config.StatementZone (default UTC). A simulator without an order source
// has no statements (channel.ErrNoStatement).
func (s *Sim) FetchStatement(ctx context.Context, day string, w io.Writer) (string, error) {
	if err := s.sleep(ctx, 0); err != nil {
		return "", fmt.Errorf("simulator: fetch statement %s: %w", day, err)
	}
	body, err := s.statementCSV(ctx, day)
	if err != nil {
		if errors.Is(err, ErrNoStatementSource) {
			return "", fmt.Errorf("%w: %w", channel.ErrNoStatement, err)
		}
		return "", err
	}
	if _, err := w.Write(body); err != nil {
		return "", fmt.Errorf("simulator: fetch statement %s: %w", day, err)
	}
	return "simulator:statement?date=" + day, nil
}

// statementCSV renders the statement of day in the CSV of CONTRACT §6.
func (s *Sim) statementCSV(ctx context.Context, day string) ([]byte, error) {
	s.mu.Lock()
	loc := s.cfg.StatementZone
	s.mu.Unlock()
	lines, err := s.StatementLines(ctx, day, loc)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	sw := httpjson.NewStatementWriter(&buf)
	for _, l := range lines {
		if err := sw.Write(l); err != nil {
			return nil, fmt.Errorf("simulator: render statement %s: %w", day, err)
		}
	}
	if err := sw.Close(); err != nil {
		return nil, fmt.Errorf("simulator: render statement %s: %w", day, err)
	}
	return buf.Bytes(), nil
}

// ParseStatement reads the CSV of CONTRACT §6 (httpjson.ParseStatement).
func (s *Sim) ParseStatement(r io.ReaderAt, size int64, day string, loc *time.Location, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	return httpjson.ParseStatement(r, size, day, loc, channel.StatementLimits{}, emit)
}

// serveStatement answers GET /statement?date=YYYY-MM-DD as an httpjson
// channel does: the signed CSV, or a signed 404 when there is none.
func (s *Sim) serveStatement(w http.ResponseWriter, r *http.Request) {
	day := r.URL.Query().Get(httpjson.StatementDateParam)
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		writeReply(w, s.errorReply(http.StatusBadRequest, "4001", "date must be YYYY-MM-DD"))
		return
	}
	if err := s.sleep(r.Context(), 0); err != nil {
		return
	}
	body, err := s.statementCSV(r.Context(), day)
	if errors.Is(err, ErrNoStatementSource) {
		writeReply(w, s.signed(http.StatusNotFound, httpjson.Response{Code: "1004", Msg: "no statement"}, false))
		return
	}
	if err != nil {
		if r.Context().Err() == nil {
			writeReply(w, s.errorReply(http.StatusInternalServerError, "5001", "statement unavailable"))
		}
		return
	}
	reply := s.signedBytes(http.StatusOK, body, false)
	for k, vs := range reply.Header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(reply.Body)
}
