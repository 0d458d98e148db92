package channel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/recon-dev/recon"
)

// Statements is implemented by adapters whose provider publishes a daily
// statement (bill). The adapter owns its provider's formats: how to ask for a
// day's file, how to verify it, and how to parse it.
type Statements interface {
	// FetchStatement downloads the statement of day (a calendar date,
	// YYYY-MM-DD, in the configured statement time zone), verifies it where
	// the provider makes that possible (signature, hash) and writes the raw,
	// verified bytes to w, exactly as ParseStatement reads them (for example
	// a zip for Alipay, the decompressed CSV for WeChat Pay). It returns where
	// the file came from (a URL without secrets) for the statement's record.
	// A day for which the channel has no statement returns an error wrapping
	// ErrNoStatement; other errors are classified like Lookup's.
	FetchStatement(ctx context.Context, day string, w io.Writer) (source string, err error)

	// ParseStatement reads a raw statement file of size bytes (as
	// FetchStatement wrote it, or as an operator downloaded it by hand) and
	// calls emit for each payment and refund line, in file order, without
	// holding the whole file in memory. day and loc are the statement's day
	// and time zone, for formats whose times carry no zone. A line that does
	// not parse, or lines that do not add up to the file's own totals, fail
	// the whole file with an error wrapping ErrBadStatement that names the
	// line; an error from emit is returned as is.
	ParseStatement(r io.ReaderAt, size int64, day string, loc *time.Location, emit func(recon.StatementLine) error) (recon.StatementTotals, error)
}

// ErrNoStatement means the channel has no statement for the day asked (not
// yet generated, or no business that day).
var ErrNoStatement = errors.New("no statement for this day")

// ErrBadStatement is wrapped by every error about a statement file that does
// not verify or parse.
var ErrBadStatement = errors.New("bad statement file")

// Default caps of a statement file, decompressed: far above a real day (a
// day of 10 million payments is about 1.5 GB and 10 million lines in
// Alipay's and WeChat Pay's layouts), far below what a small zip or gzip
// can inflate to.
const (
	DefaultMaxStatementBytes int64 = 2 << 30
	DefaultMaxStatementLines int64 = 20_000_000
)

// ErrStatementTooLarge is wrapped, beside ErrBadStatement, by the error of a
// statement file that goes past its StatementLimits.
var ErrStatementTooLarge = errors.New("statement file too large")

// StatementLimits bound a statement file as it is read, after
// decompression. A zero field is its default.
type StatementLimits struct {
	// MaxBytes bounds the bytes of the file (statements.max_bytes).
	MaxBytes int64
	// MaxLines bounds its lines (statements.max_lines).
	MaxLines int64
}

// StatementLimiter is implemented by adapters whose statement files can be
// bounded; an adapter never told uses the defaults.
type StatementLimiter interface {
	SetStatementLimits(StatementLimits)
}

// OrDefault is l with each zero field set to its default.
func (l StatementLimits) OrDefault() StatementLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxStatementBytes
	}
	if l.MaxLines <= 0 {
		l.MaxLines = DefaultMaxStatementLines
	}
	return l
}

// Reader is r bounded by l: a read past MaxBytes bytes, or past MaxLines
// line ends, fails with an error wrapping ErrBadStatement and
// ErrStatementTooLarge that names the cap. Put it after the decompressor, so
// that a file is refused as soon as it inflates past what a day can be,
// never read to its end.
func (l StatementLimits) Reader(r io.Reader) io.Reader {
	return &cappedReader{r: r, lim: l.OrDefault()}
}

// TooLarge is the error of a file past l's byte cap, for readers that count
// bytes themselves (a download staged before it is parsed).
func (l StatementLimits) TooLarge() error {
	return fmt.Errorf("%w: %w: more than %d bytes decompressed (statements.max_bytes)", ErrBadStatement, ErrStatementTooLarge, l.OrDefault().MaxBytes)
}

type cappedReader struct {
	r        io.Reader
	lim      StatementLimits
	n, lines int64
	err      error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if room := c.lim.MaxBytes - c.n + 1; int64(len(p)) > room {
		p = p[:room] // one byte more than the cap tells a file at the cap from one past it
	}
	n, err := c.r.Read(p)
	// Hand on what lies within the caps, so that the reader's error names the
	// last line read whole; the next read fails.
	keep := n
	if c.n+int64(n) > c.lim.MaxBytes {
		keep = int(c.lim.MaxBytes - c.n)
		c.err = c.lim.TooLarge()
	}
	for i := 0; i < keep; {
		j := bytes.IndexByte(p[i:keep], '\n')
		if j < 0 {
			break
		}
		if c.lines++; c.lines > c.lim.MaxLines {
			keep = i + j
			c.err = fmt.Errorf("%w: %w: more than %d lines (statements.max_lines)", ErrBadStatement, ErrStatementTooLarge, c.lim.MaxLines)
			break
		}
		i += j + 1
	}
	c.n += int64(keep)
	if c.err != nil {
		return keep, nil
	}
	return n, err
}

// DayWindow is the instants [start, end) of day (YYYY-MM-DD) in loc (nil:
// UTC), the window a statement's lines must lie in.
func DayWindow(day string, loc *time.Location) (time.Time, time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	start, err := time.ParseInLocation(time.DateOnly, day, loc)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("day %q is not YYYY-MM-DD", Truncate(day))
	}
	return start, start.AddDate(0, 0, 1), nil
}

// OutsideDay says why t is not within [start, end), the window of day, or
// "" when it is; what names the time's column.
func OutsideDay(what string, t, start, end time.Time, day string) string {
	if !t.Before(start) && t.Before(end) {
		return ""
	}
	return fmt.Sprintf("%s %s is outside the statement's day %s (%s to %s)", what, t.In(start.Location()).Format(time.DateTime),
		day, start.Format(time.DateTime), end.Format(time.DateTime+" MST"))
}

// SecureLink checks a statement download link a provider's verified answer
// handed out: it must be an absolute URL, and is fetched over https; a
// plain-http link is rewritten to https (providers' documented samples show
// http links to hosts that serve https), unless insecure (a test server or
// simulator without TLS) keeps it as it is.
func SecureLink(link string, insecure bool) (*url.URL, error) {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("the download link is not an absolute http(s) URL")
	}
	if u.Scheme == "http" && !insecure {
		u.Scheme = "https"
	}
	return u, nil
}

// ErrRedirectRefused is wrapped by the error of a download whose redirect
// DownloadClient refused.
var ErrRedirectRefused = errors.New("refused a redirect")

// DownloadClient is a copy of hc for statement downloads: it follows a
// redirect only on the host of the first request and only over https (or
// over http as well when insecure), at most 10, so that a file is never
// taken from elsewhere than where the provider's verified answer pointed.
func DownloadClient(hc *http.Client, insecure bool) *http.Client {
	c := *hc
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		switch {
		case len(via) >= 10:
			return errors.New("stopped after 10 redirects")
		case req.URL.Scheme != "https" && !(insecure && req.URL.Scheme == "http"):
			return fmt.Errorf("%w off https (to %s://%s)", ErrRedirectRefused, req.URL.Scheme, req.URL.Host)
		case !strings.EqualFold(req.URL.Host, first.Host):
			return fmt.Errorf("%w to another host (%s, not %s)", ErrRedirectRefused, req.URL.Host, first.Host)
		}
		return nil
	}
	return &c
}
