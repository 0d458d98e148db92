package httpjson

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// DefaultStatementPath is where a channel serves its daily statement
// (CONTRACT §6): GET {base_url}/statement?date=YYYY-MM-DD.
const DefaultStatementPath = "/statement"

// StatementDateParam is the query parameter naming the statement's day.
const StatementDateParam = "date"

// StatementHeader is the header row of a statement file, in this order when
// rendered; a parser finds the columns by name.
var StatementHeader = []string{"type", "order_no", "txn_id", "refund_no", "amount", "fee", "currency", "time"}

var _ channel.Statements = (*Client)(nil)

// statementURL is BaseURL with the statement path and day.
func (c *Client) statementURL(day string) string {
	u, _ := url.Parse(c.cfg.BaseURL) // validated by New
	u.Path = strings.TrimSuffix(u.Path, "/") + c.cfg.StatementPath
	u.RawPath = ""
	u.Fragment = ""
	u.RawQuery = url.Values{StatementDateParam: {day}}.Encode()
	return u.String()
}

// FetchStatement downloads the statement of day and copies it to w while it
// is read, checking its X-Signature over the whole body when a secret is set.
// The bytes already written to w are not verified until FetchStatement
// returns nil: on any error the caller discards them. 404 (signed, when a
// secret is set) is ErrNoStatement; 429 and 5xx are transient; a bad
// signature wraps channel.ErrBadSignature and channel.ErrBadStatement.
func (c *Client) FetchStatement(ctx context.Context, day string, w io.Writer) (string, error) {
	fail := func(err error) error { return fmt.Errorf("httpjson %s: fetch statement %s: %w", c.cfg.Name, day, err) }
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return "", channel.Permanent(fail(fmt.Errorf("day %q is not YYYY-MM-DD", day)))
	}
	src := c.statementURL(day)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return "", channel.Permanent(fail(fmt.Errorf("build request: %w", err)))
	}
	req.Header.Set("Accept", "text/csv")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", channel.NetworkError(ctx, err, fail)
	}
	defer resp.Body.Close()
	redacted := redactedURL(src)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		after := channel.ParseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Now())
		return redacted, channel.RateLimited(after, fail(fmt.Errorf("HTTP 429: %s", channel.Snippet(body))))
	case resp.StatusCode >= 500:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return redacted, channel.Transient(fail(fmt.Errorf("HTTP %d: %s", resp.StatusCode, channel.Snippet(body))))
	case resp.StatusCode == http.StatusNotFound:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
		if c.cfg.Secret != "" {
			// Only a verified answer may say there is no statement.
			if err := Verify(c.cfg.Secret, body, resp.Header.Get(SignatureHeader)); err != nil {
				return redacted, channel.Permanent(fail(fmt.Errorf("HTTP 404: %w", err)))
			}
		}
		return redacted, fail(channel.ErrNoStatement)
	case resp.StatusCode != http.StatusOK:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return redacted, channel.Permanent(fail(fmt.Errorf("HTTP %d: %s", resp.StatusCode, channel.Snippet(body))))
	}
	var mac hash.Hash
	dst := w
	if c.cfg.Secret != "" {
		mac = hmac.New(sha256.New, []byte(c.cfg.Secret))
		dst = io.MultiWriter(w, mac)
	}
	if _, err := io.Copy(dst, resp.Body); err != nil {
		return redacted, channel.NetworkError(ctx, fmt.Errorf("read body: %w", err), fail)
	}
	if mac != nil {
		if err := verifySum(mac.Sum(nil), resp.Header.Get(SignatureHeader)); err != nil {
			return redacted, channel.Permanent(fail(fmt.Errorf("%w: %w", channel.ErrBadStatement, err)))
		}
	}
	return redacted, nil
}

// verifySum compares an HMAC computed while streaming with the hex signature.
func verifySum(sum []byte, sig string) error {
	sig = strings.TrimSpace(sig)
	if sig == "" {
		return fmt.Errorf("verify signature: missing %s header: %w", SignatureHeader, channel.ErrBadSignature)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, sum) {
		return fmt.Errorf("verify signature: %w", channel.ErrBadSignature)
	}
	return nil
}

// redactedURL drops credentials from a URL for the statement's record.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Redacted()
}

// ParseStatement implements channel.Statements for the CSV of CONTRACT §6.
func (c *Client) ParseStatement(r io.ReaderAt, size int64, day string, loc *time.Location, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	return ParseStatement(r, size, emit)
}

// ParseStatement reads a statement CSV (header
// type,order_no,txn_id,refund_no,amount,fee,currency,time; columns found by
// name, extra columns ignored, a UTF-8 byte order mark allowed) and emits
// each line in file order. The format has no summary rows, so the totals
// returned are those of the lines, with Present false. Every error about the
// file wraps channel.ErrBadStatement and names the line; emit's errors are
// returned as they are.
func ParseStatement(r io.ReaderAt, size int64, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	var tot recon.StatementTotals
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	bad := func(line int, format string, args ...any) error {
		return fmt.Errorf("%w: line %d: %s", channel.ErrBadStatement, line, fmt.Sprintf(format, args...))
	}
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return tot, bad(1, "empty file, no header row")
	}
	if err != nil {
		return tot, csvError(err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, name := range StatementHeader {
		if _, ok := col[name]; !ok {
			return tot, bad(1, "header has no %q column (want %s)", name, strings.Join(StatementHeader, ","))
		}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return tot, nil
		}
		if err != nil {
			return tot, csvError(err)
		}
		lineNo, _ := cr.FieldPos(0)
		field := func(name string) string { return strings.TrimSpace(rec[col[name]]) }
		l := recon.StatementLine{
			LineNo:       lineNo,
			Kind:         recon.StatementLineKind(strings.ToUpper(field("type"))),
			OrderNo:      field("order_no"),
			ChannelTxnID: field("txn_id"),
			RefundNo:     field("refund_no"),
			Currency:     strings.ToUpper(field("currency")),
		}
		if l.ChannelTxnID == "" {
			return tot, bad(lineNo, "empty txn_id")
		}
		if l.Amount, err = strconv.ParseInt(field("amount"), 10, 64); err != nil {
			return tot, bad(lineNo, "amount %q is not an integer of minor units", channel.Truncate(field("amount")))
		}
		if l.Fee, err = strconv.ParseInt(field("fee"), 10, 64); err != nil {
			return tot, bad(lineNo, "fee %q is not an integer of minor units", channel.Truncate(field("fee")))
		}
		t, err := time.Parse(time.RFC3339, field("time"))
		if err != nil {
			return tot, bad(lineNo, "time %q is not RFC 3339", channel.Truncate(field("time")))
		}
		l.OccurredAt = t.UTC()
		if err := l.Validate(); err != nil {
			return tot, fmt.Errorf("%w: %v", channel.ErrBadStatement, err)
		}
		if l.Kind == recon.LinePayment {
			tot.PaymentsCount++
			tot.PaymentsAmount += l.Amount
		} else {
			tot.RefundsCount++
			tot.RefundsAmount += l.Amount
		}
		tot.FeesAmount += l.Fee
		if err := emit(l); err != nil {
			return tot, err
		}
	}
}

// csvError names the line of a CSV syntax error.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: line %d: %v", channel.ErrBadStatement, pe.StartLine, pe.Err)
	}
	return fmt.Errorf("%w: %v", channel.ErrBadStatement, err)
}

// StatementWriter renders statement lines as the CSV of CONTRACT §6.
type StatementWriter struct {
	w      *csv.Writer
	header bool
	rec    []string
}

// NewStatementWriter returns a writer of a statement CSV to w.
func NewStatementWriter(w io.Writer) *StatementWriter {
	return &StatementWriter{w: csv.NewWriter(w), rec: make([]string, len(StatementHeader))}
}

// Write writes one line (the header first, once).
func (s *StatementWriter) Write(l recon.StatementLine) error {
	if !s.header {
		s.header = true
		if err := s.w.Write(StatementHeader); err != nil {
			return err
		}
	}
	s.rec[0], s.rec[1], s.rec[2], s.rec[3] = string(l.Kind), l.OrderNo, l.ChannelTxnID, l.RefundNo
	s.rec[4], s.rec[5] = strconv.FormatInt(l.Amount, 10), strconv.FormatInt(l.Fee, 10)
	s.rec[6], s.rec[7] = l.Currency, l.OccurredAt.UTC().Format(time.RFC3339)
	return s.w.Write(s.rec)
}

// Close writes the header of an empty statement and flushes.
func (s *StatementWriter) Close() error {
	if !s.header {
		s.header = true
		if err := s.w.Write(StatementHeader); err != nil {
			return err
		}
	}
	s.w.Flush()
	return s.w.Error()
}
