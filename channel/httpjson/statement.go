package httpjson

import (
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

// StatementTimeout bounds the fetch of one statement, all of its body; the
// channel's timeout bounds each wait for the server (the answer, and every
// read of the body), so a server that stops sending is given up on within
// timeout, and one that never stops is cut off by the size cap.
const StatementTimeout = 10 * time.Minute

// FetchStatement downloads the statement of day and copies it to w while it
// is read, checking its X-Signature over the whole body when a secret is set.
// The bytes already written to w are not verified until FetchStatement
// returns nil: on any error the caller discards them. 404 (signed, when a
// secret is set) is ErrNoStatement; 429 and 5xx are transient; a bad
// signature wraps channel.ErrBadSignature and channel.ErrBadStatement; a
// body past Config.StatementLimits wraps channel.ErrStatementTooLarge. A
// redirect is followed only on the same host, and off https only when
// base_url is plain http.
func (c *Client) FetchStatement(ctx context.Context, day string, w io.Writer) (string, error) {
	fail := func(err error) error { return fmt.Errorf("httpjson %s: fetch statement %s: %w", c.cfg.Name, day, err) }
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return "", channel.Permanent(fail(fmt.Errorf("day %q is not YYYY-MM-DD", day)))
	}
	src := c.statementURL(day)
	redacted := redactedURL(src)
	fctx, cancel := context.WithTimeoutCause(ctx, StatementTimeout, fmt.Errorf("the statement took more than %s", StatementTimeout))
	defer cancel()
	fctx, stall := context.WithCancelCause(fctx)
	defer stall(nil)
	idle := fmt.Errorf("the channel sent nothing for %s (timeout)", c.cfg.Timeout)
	timer := time.AfterFunc(c.cfg.Timeout, func() { stall(idle) })
	defer timer.Stop()
	// netErr classifies a failed read, naming the timeout that cut it.
	netErr := func(err error) error {
		if cause := context.Cause(fctx); cause != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", err, cause)
		}
		return channel.NetworkError(ctx, err, fail)
	}
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, src, nil)
	if err != nil {
		return "", channel.Permanent(fail(fmt.Errorf("build request: %w", err)))
	}
	req.Header.Set("Accept", "text/csv")
	insecure := strings.HasPrefix(src, "http:")
	resp, err := channel.DownloadClient(c.cfg.HTTPClient, insecure).Do(req)
	if err != nil {
		return redacted, netErr(err)
	}
	defer resp.Body.Close()
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
	body := c.cfg.StatementLimits.Reader(idleReader{resp.Body, timer, c.cfg.Timeout})
	if _, err := io.Copy(dst, body); err != nil {
		if errors.Is(err, channel.ErrStatementTooLarge) {
			return redacted, channel.Permanent(fail(err))
		}
		return redacted, netErr(fmt.Errorf("read body: %w", err))
	}
	if mac != nil {
		if err := verifySum(mac.Sum(nil), resp.Header.Get(SignatureHeader)); err != nil {
			return redacted, channel.Permanent(fail(fmt.Errorf("%w: %w", channel.ErrBadStatement, err)))
		}
	}
	return redacted, nil
}

// idleReader restarts timer, of d, after every read that returned bytes.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (i idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.timer.Reset(i.d)
	}
	return n, err
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

// SetStatementLimits bounds the statement files of the client
// (Config.StatementLimits). Call it before the client is used.
func (c *Client) SetStatementLimits(l channel.StatementLimits) { c.cfg.StatementLimits = l }

// ParseStatement implements channel.Statements for the CSV of CONTRACT §6.
func (c *Client) ParseStatement(r io.ReaderAt, size int64, day string, loc *time.Location, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	return ParseStatement(r, size, day, loc, c.cfg.StatementLimits, emit)
}

// MaxStatementLine bounds one line of a statement CSV.
const MaxStatementLine = 64 << 10

// ParseStatement reads a statement CSV (header
// type,order_no,txn_id,refund_no,amount,fee,currency,time; columns found by
// name, extra columns ignored, a UTF-8 byte order mark allowed) and emits
// each line in file order. Each line is one record (a quoted field does not
// span lines) of at most MaxStatementLine bytes, fields of at most
// channel.MaxCSVField; the file holds at most lim's bytes and lines, and
// every line's time lies in day (YYYY-MM-DD) in loc (nil: UTC), the day the
// channel was asked for. The format has no summary rows, so the totals
// returned are those of the lines, with Present false. Every error about the
// file wraps channel.ErrBadStatement and names the line; emit's errors are
// returned as they are.
func ParseStatement(r io.ReaderAt, size int64, day string, loc *time.Location, lim channel.StatementLimits, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	var tot recon.StatementTotals
	start, end, err := channel.DayWindow(day, loc)
	if err != nil {
		return tot, fmt.Errorf("%w: %v", channel.ErrBadStatement, err)
	}
	sc := channel.NewLineScanner(lim.Reader(io.NewSectionReader(r, 0, size)), MaxStatementLine)
	bad := sc.Bad
	var (
		col    map[string]int
		fields []string
	)
	for sc.Scan() {
		line := sc.Line()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if fields, err = channel.SplitCSVLine(fields, line); err != nil {
			return tot, bad("%v", err)
		}
		if col == nil {
			col = map[string]int{}
			for i, h := range fields {
				col[strings.ToLower(strings.TrimSpace(h))] = i
			}
			for _, name := range StatementHeader {
				if _, ok := col[name]; !ok {
					return tot, bad("header has no %q column (want %s)", name, strings.Join(StatementHeader, ","))
				}
			}
			continue
		}
		if len(fields) != len(col) {
			return tot, bad("%d fields, the header has %d", len(fields), len(col))
		}
		field := func(name string) string { return strings.TrimSpace(fields[col[name]]) }
		l := recon.StatementLine{
			LineNo:       sc.N(),
			Kind:         recon.StatementLineKind(strings.ToUpper(field("type"))),
			OrderNo:      field("order_no"),
			ChannelTxnID: field("txn_id"),
			RefundNo:     field("refund_no"),
			Currency:     strings.ToUpper(field("currency")),
		}
		if l.ChannelTxnID == "" {
			return tot, bad("empty txn_id")
		}
		if l.Amount, err = strconv.ParseInt(field("amount"), 10, 64); err != nil {
			return tot, bad("amount %q is not an integer of minor units", channel.Truncate(field("amount")))
		}
		if l.Fee, err = strconv.ParseInt(field("fee"), 10, 64); err != nil {
			return tot, bad("fee %q is not an integer of minor units", channel.Truncate(field("fee")))
		}
		t, err := time.Parse(time.RFC3339, field("time"))
		if err != nil {
			return tot, bad("time %q is not RFC 3339", channel.Truncate(field("time")))
		}
		if why := channel.OutsideDay("time", t, start, end, day); why != "" {
			return tot, bad("%s", why)
		}
		l.OccurredAt = t.UTC()
		if err := l.Validate(); err != nil {
			return tot, fmt.Errorf("%w: %v", channel.ErrBadStatement, err) // Validate names the line
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
	if err := sc.Err(); err != nil {
		return tot, err
	}
	if col == nil {
		return tot, fmt.Errorf("%w: line 1: empty file, no header row", channel.ErrBadStatement)
	}
	return tot, nil
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
