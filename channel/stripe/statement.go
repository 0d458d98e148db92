package stripe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v82"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Statement settings.
const (
	// BalanceTransactionsPath lists balance transactions.
	BalanceTransactionsPath = "/v1/balance_transactions"
	// StatementPageSize is the page size asked for (Stripe's largest).
	StatementPageSize = 100
	// StatementTimeout bounds the fetch of one day, all pages.
	StatementTimeout = 10 * time.Minute
	// MaxStatementLineBytes bounds one page of the statement file.
	MaxStatementLineBytes = MaxBodyBytes + 1024
)

// Balance transaction types read as payments and refunds; the others
// (payouts, adjustments, Stripe's own fees, …) are not orders' and are
// skipped.
var (
	paymentTypes = map[string]bool{"charge": true, "payment": true}
	refundTypes  = map[string]bool{"refund": true, "payment_refund": true}
)

var _ channel.Statements = (*Client)(nil)

// sinkKey carries a page sink in a request's context: the recorder hands it
// every reply.
type sinkKey struct{}

// FetchStatement lists the balance transactions created during day (a
// calendar day in Config.StatementZone) with the SDK's list iterator,
// created[gte] and created[lt], 100 a page, each one's source expanded so
// that its PaymentIntent is known, and writes every page's JSON as
// received, compacted to one line, in order: the raw file ParseStatement
// reads, refusing a day whose pages add up to more than
// Config.StatementLimits' bytes. The source is the list URL with the window.
func (c *Client) FetchStatement(ctx context.Context, day string, w io.Writer) (string, error) {
	fail := func(err error) (string, error) {
		return "", c.wrapStatement(day, err)
	}
	start, end, err := channel.DayWindow(day, c.cfg.StatementZone)
	if err != nil {
		return fail(channel.Permanent(err))
	}
	params := &stripego.BalanceTransactionListParams{
		CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: start.Unix(), LesserThan: end.Unix()},
	}
	params.Limit = stripego.Int64(StatementPageSize)
	params.AddExpand("data.source")
	var (
		last     Reply
		got      bool
		writeErr error
		pages    int
		written  int64
		limits   = c.cfg.StatementLimits.OrDefault()
	)
	sink := func(r Reply) {
		got, last = true, r
		if r.StatusCode != http.StatusOK || writeErr != nil {
			return
		}
		if len(r.Body) > MaxBodyBytes {
			writeErr = channel.Permanent(fmt.Errorf("%w: page %d larger than %d bytes", channel.ErrMalformed, pages+1, MaxBodyBytes))
			return
		}
		var line bytes.Buffer
		if err := json.Compact(&line, r.Body); err != nil {
			writeErr = channel.Permanent(fmt.Errorf("%w: page %d is not JSON: %s", channel.ErrMalformed, pages+1, snippet(r.Body)))
			return
		}
		line.WriteByte('\n')
		if written += int64(line.Len()); written > limits.MaxBytes {
			writeErr = channel.Permanent(limits.TooLarge())
			return
		}
		if _, err := w.Write(line.Bytes()); err != nil {
			writeErr = fmt.Errorf("write: %w", err)
		}
		pages++
	}
	fctx, cancel := context.WithTimeout(ctx, StatementTimeout)
	defer cancel()
	fctx = context.WithValue(fctx, sinkKey{}, sink)
	for _, err := range c.sc.V1BalanceTransactions.List(fctx, params) {
		if writeErr != nil {
			return fail(writeErr)
		}
		if err == nil {
			continue
		}
		switch {
		case !got:
			return fail(channel.NetworkError(ctx, err, nil))
		case last.StatusCode != http.StatusOK:
			return fail(ReplyError(last, ParseError(last.Body), c.cfg.Now()))
		case fctx.Err() != nil || ctx.Err() != nil:
			return fail(channel.NetworkError(ctx, err, nil))
		default:
			return fail(channel.Permanent(fmt.Errorf("%w: the Stripe SDK cannot decode page %d: %v: %s", channel.ErrMalformed, pages, err, snippet(last.Body))))
		}
	}
	if writeErr != nil {
		return fail(writeErr)
	}
	if pages == 0 {
		return fail(channel.NetworkError(ctx, errors.New("no page received"), nil))
	}
	return fmt.Sprintf("%s%s?created[gte]=%d&created[lt]=%d", strings.TrimSuffix(c.cfg.BaseURL, "/"), BalanceTransactionsPath, start.Unix(), end.Unix()), nil
}

// SetStatementZone sets the time zone of statement days (Config.StatementZone)
// of a client built without it; nil is UTC. Call it before the client is
// used.
func (c *Client) SetStatementZone(loc *time.Location) {
	if loc == nil {
		loc = time.UTC
	}
	c.cfg.StatementZone = loc
}

func (c *Client) wrapStatement(day string, err error) error {
	var ce *channel.Error
	if errors.As(err, &ce) {
		return &channel.Error{Class: ce.Class, RetryAfter: ce.RetryAfter, Err: fmt.Errorf("stripe %s: statement %s: %w", c.cfg.Name, day, ce.Err)}
	}
	return fmt.Errorf("stripe %s: statement %s: %w", c.cfg.Name, day, err)
}

// SetStatementLimits bounds the statement files of the client
// (Config.StatementLimits). Call it before the client is used.
func (c *Client) SetStatementLimits(l channel.StatementLimits) { c.cfg.StatementLimits = l }

// ParseStatement reads the statement file FetchStatement writes; see
// ParseBalanceTransactions. loc nil is Config.StatementZone.
func (c *Client) ParseStatement(r io.ReaderAt, size int64, day string, loc *time.Location, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	if loc == nil {
		loc = c.cfg.StatementZone
	}
	return ParseBalanceTransactions(io.NewSectionReader(r, 0, size), day, loc, c.cfg.StatementLimits, emit)
}

// wirePage is one page of the balance transaction list.
type wirePage struct {
	Object  json.RawMessage   `json:"object"`
	Data    []json.RawMessage `json:"data"`
	HasMore json.RawMessage   `json:"has_more"`
	URL     json.RawMessage   `json:"url"`
}

// wireBalanceTxn is the part of a balance transaction recon reads.
type wireBalanceTxn struct {
	ID       json.RawMessage `json:"id"`
	Object   json.RawMessage `json:"object"`
	Amount   json.RawMessage `json:"amount"`
	Fee      json.RawMessage `json:"fee"`
	Net      json.RawMessage `json:"net"`
	Currency json.RawMessage `json:"currency"`
	Created  json.RawMessage `json:"created"`
	Type     json.RawMessage `json:"type"`
	Source   json.RawMessage `json:"source"`
}

// wireSource is the part of an expanded source (a charge or a refund) recon
// reads.
type wireSource struct {
	ID            json.RawMessage   `json:"id"`
	Object        json.RawMessage   `json:"object"`
	PaymentIntent json.RawMessage   `json:"payment_intent"`
	Charge        json.RawMessage   `json:"charge"`
	Metadata      map[string]string `json:"metadata"`
}

// MetadataOrderNo is the metadata key whose value, when a charge or refund
// carries it, is the line's order number.
const MetadataOrderNo = "order_no"

// ParseBalanceTransactions reads a Stripe statement: one balance transaction
// list page per line (JSON, as the API sent it), in the order fetched. Each
// page must be a list whose has_more is true but on the last line; each
// transaction must have been created during day in loc, with integer
// amount, fee and net (net = amount − fee), a currency and an expanded
// source. Charges (types charge and payment) are payments of amount,
// refunds (refund, payment_refund) refunds of −amount numbered by the
// refund's id; both name the PaymentIntent (or, without one, the charge) as
// the transaction id, and the order number when the source's metadata has
// order_no. fee is kept as Stripe writes it (positive: a cost). Other types
// are skipped. The file may hold at most lim's bytes and transactions
// (MaxLines counts transactions, not pages). The day's window is the one
// FetchStatement lists by (created[gte] its first midnight, created[lt] the
// next), so a transaction created at the next midnight belongs to the next
// day. Stripe's list has no totals, so Present is false. A line's
// LineNo is the transaction's position in the file; errors wrap
// channel.ErrBadStatement and name the page (the line of the file) and the
// position.
func ParseBalanceTransactions(r io.Reader, day string, loc *time.Location, lim channel.StatementLimits, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	start, end, err := channel.DayWindow(day, loc)
	if err != nil {
		return recon.StatementTotals{}, fmt.Errorf("%w: %v", channel.ErrBadStatement, err)
	}
	lim = lim.OrDefault()
	sc := channel.NewLineScanner(lim.Reader(r), MaxStatementLineBytes)
	page, record := 0, 0
	more := true
	for sc.Scan() {
		line := bytes.TrimSpace([]byte(sc.Line()))
		if len(line) == 0 {
			continue
		}
		page++
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d (page %d): %s", channel.ErrBadStatement, page, page, fmt.Sprintf(format, args...))
		}
		if !more {
			return recon.StatementTotals{}, bad("a page after the one whose has_more is false")
		}
		var p wirePage
		if err := strictObject(line, &p); err != nil {
			return recon.StatementTotals{}, bad("%v", err)
		}
		if obj, err := str(p.Object, "object"); err != nil || obj != "list" {
			return recon.StatementTotals{}, bad("not a list")
		}
		if err := json.Unmarshal(p.HasMore, &more); err != nil || isNull(p.HasMore) {
			return recon.StatementTotals{}, bad("has_more is not a boolean")
		}
		if u, err := str(p.URL, "url"); err != nil || u != BalanceTransactionsPath {
			return recon.StatementTotals{}, bad("not a list of balance transactions")
		}
		for _, raw := range p.Data {
			record++
			if int64(record) > lim.MaxLines {
				return recon.StatementTotals{}, fmt.Errorf("%w: %w: line %d (page %d): more than %d transactions (statements.max_lines)",
					channel.ErrBadStatement, channel.ErrStatementTooLarge, page, page, lim.MaxLines)
			}
			l, ok, err := parseBalanceTxn(raw, day, start, end)
			if err != nil {
				return recon.StatementTotals{}, fmt.Errorf("%w: line %d (page %d), transaction %d: %v", channel.ErrBadStatement, page, page, record, err)
			}
			if !ok {
				continue
			}
			l.LineNo = record
			if err := l.Validate(); err != nil {
				return recon.StatementTotals{}, fmt.Errorf("%w: line %d (page %d), transaction %d: %v", channel.ErrBadStatement, page, page, record, err)
			}
			if err := emit(l); err != nil {
				return recon.StatementTotals{}, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return recon.StatementTotals{}, err
	}
	switch {
	case page == 0:
		return recon.StatementTotals{}, fmt.Errorf("%w: no page", channel.ErrBadStatement)
	case more:
		return recon.StatementTotals{}, fmt.Errorf("%w: line %d: the last page says has_more (truncated file?)", channel.ErrBadStatement, page)
	}
	return recon.StatementTotals{}, nil
}

// parseBalanceTxn reads one balance transaction: ok is false for a type
// that is neither a payment nor a refund.
func parseBalanceTxn(raw json.RawMessage, day string, start, end time.Time) (recon.StatementLine, bool, error) {
	var bt wireBalanceTxn
	if err := strictObject(raw, &bt); err != nil {
		return recon.StatementLine{}, false, err
	}
	id, err := str(bt.ID, "id")
	if err != nil {
		return recon.StatementLine{}, false, err
	}
	if obj, err := str(bt.Object, "object"); err != nil || obj != "balance_transaction" {
		return recon.StatementLine{}, false, fmt.Errorf("%s is not a balance_transaction", channel.Truncate(id))
	}
	typ, err := str(bt.Type, "type")
	if err != nil {
		return recon.StatementLine{}, false, fmt.Errorf("%s: %v", id, err)
	}
	at, err := unixTime(bt.Created, "created")
	if err != nil {
		return recon.StatementLine{}, false, fmt.Errorf("%s: %v", id, err)
	}
	if at.Before(start) || !at.Before(end) {
		return recon.StatementLine{}, false, fmt.Errorf("%s: %s", id, channel.OutsideDay("created", at, start, end, day))
	}
	amt, err := integer(bt.Amount, "amount")
	if err != nil {
		return recon.StatementLine{}, false, fmt.Errorf("%s: %v", id, err)
	}
	fee, err := integer(bt.Fee, "fee")
	if err != nil {
		return recon.StatementLine{}, false, fmt.Errorf("%s: %v", id, err)
	}
	net, err := integer(bt.Net, "net")
	if err != nil {
		return recon.StatementLine{}, false, fmt.Errorf("%s: %v", id, err)
	}
	if amt-fee != net {
		return recon.StatementLine{}, false, fmt.Errorf("%s: net %d is not amount %d minus fee %d", id, net, amt, fee)
	}
	cur, err := str(bt.Currency, "currency")
	if err != nil {
		return recon.StatementLine{}, false, fmt.Errorf("%s: %v", id, err)
	}
	if cur, err = currency(cur); err != nil {
		return recon.StatementLine{}, false, fmt.Errorf("%s: %v", id, err)
	}
	l := recon.StatementLine{Amount: amt, Fee: fee, Currency: cur, OccurredAt: at}
	var want string
	switch {
	case paymentTypes[typ]:
		l.Kind, want = recon.LinePayment, "charge"
		if amt < 0 {
			return l, false, fmt.Errorf("%s: a %s of negative amount %d", id, typ, amt)
		}
	case refundTypes[typ]:
		l.Kind, want, l.Amount = recon.LineRefund, "refund", -amt
		if amt > 0 {
			return l, false, fmt.Errorf("%s: a %s of positive amount %d", id, typ, amt)
		}
	default:
		return l, false, nil
	}
	if len(bytes.TrimSpace(bt.Source)) == 0 || bytes.TrimSpace(bt.Source)[0] != '{' {
		return l, false, fmt.Errorf("%s: source is not expanded (expand data.source)", id)
	}
	var src wireSource
	if err := strictObject(bt.Source, &src); err != nil {
		return l, false, fmt.Errorf("%s: source: %v", id, err)
	}
	srcID, err := str(src.ID, "source.id")
	if err != nil {
		return l, false, fmt.Errorf("%s: %v", id, err)
	}
	if obj, err := str(src.Object, "source.object"); err != nil || obj != want {
		return l, false, fmt.Errorf("%s: the source of a %s is not a %s", id, typ, want)
	}
	intent, err := idOf(src.PaymentIntent, "source.payment_intent")
	if err != nil {
		return l, false, fmt.Errorf("%s: %v", id, err)
	}
	l.ChannelTxnID = intent
	if l.Kind == recon.LineRefund {
		l.RefundNo = srcID
		if l.ChannelTxnID == "" {
			if l.ChannelTxnID, err = idOf(src.Charge, "source.charge"); err != nil {
				return l, false, fmt.Errorf("%s: %v", id, err)
			}
		}
	} else if l.ChannelTxnID == "" {
		l.ChannelTxnID = srcID // a charge made without a PaymentIntent
	}
	l.OrderNo = src.Metadata[MetadataOrderNo]
	return l, true, nil
}

// idOf reads a field that is null, an id, or an expanded object with an id.
func idOf(raw json.RawMessage, name string) (string, error) {
	t := bytes.TrimSpace(raw)
	if isNull(t) {
		return "", nil
	}
	if t[0] == '"' {
		return str(t, name)
	}
	var obj struct {
		ID json.RawMessage `json:"id"`
	}
	if err := strictObject(t, &obj); err != nil {
		return "", fmt.Errorf("%s is neither null, an id nor an object", name)
	}
	return str(obj.ID, name+".id")
}
