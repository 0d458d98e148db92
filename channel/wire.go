package channel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/recon-dev/recon"
)

// MaxSnippet bounds each piece of channel-supplied text (a raw body, a code,
// a message) that an adapter quotes in an error: answers can be large and are
// not ours, so logs and last_query_error stay bounded.
const MaxSnippet = 200

// Snippet quotes at most MaxSnippet bytes of a raw body for an error:
// `body "..."`, followed by ... when the body was cut, or "empty body".
// Snippet blanks nothing: an adapter whose answers may carry secrets redacts
// body before passing it.
func Snippet(body []byte) string {
	if len(body) == 0 {
		return "empty body"
	}
	if len(body) > MaxSnippet {
		return fmt.Sprintf("body %q...", body[:MaxSnippet])
	}
	return fmt.Sprintf("body %q", body)
}

// Truncate bounds a channel-supplied string quoted in an error to MaxSnippet
// bytes, marking a cut with "...". It cuts between characters, replaces
// invalid UTF-8 and removes control characters and terminal escapes
// (recon.CleanText), so the result can be stored in a utf8mb4 column and
// printed as is.
func Truncate(s string) string {
	s = recon.CleanText(s)
	if len(s) <= MaxSnippet {
		return s
	}
	n := MaxSnippet
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// NetworkError classifies err, a failed HTTP round trip (or a failed read of
// its body) made under ctx, and names it with annotate (nil: leave it as it
// is), which adapters use to add their channel, operation and order.
//
// The caller giving up (ctx done) is passed through unclassified as
// ctx.Err(), annotated: ClassOf makes a cancel permanent and a deadline
// transient. Everything else (refused, reset, our own per-request timeout)
// is Transient, annotated inside the class, reading
// "transient: <annotation>: request: <cause>". A *url.Error is unwrapped
// first: it repeats the URL, which adds nothing.
func NetworkError(ctx context.Context, err error, annotate func(error) error) error {
	if annotate == nil {
		annotate = func(err error) error { return err }
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if ctx.Err() != nil {
		return annotate(ctx.Err())
	}
	return Transient(annotate(fmt.Errorf("request: %w", err)))
}

// IdleCloser is an adapter whose HTTP client keeps connections open between
// requests: CloseIdleConnections closes those not in use (the process that
// built it calls it as it ends).
type IdleCloser interface {
	CloseIdleConnections()
}

// NewHTTPClient returns the default HTTP client of an adapter: its own
// connection pool (a clone of http.DefaultTransport's settings), so that one
// channel's connections are never shared with, or closed by, anything else
// in the process. Timeouts apply per request through the context.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
}

// ParseBaseURL parses a configured base_url, which must be an absolute http
// or https URL. Its errors never quote the value: it may carry credentials,
// and without a scheme ("user:pass@host/path") it parses as an opaque URL
// whose password url.URL.Redacted does not hide.
func ParseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("not an absolute http(s) URL (it must start with https:// or http://)")
	}
	return u, nil
}
