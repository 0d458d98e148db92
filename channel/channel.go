// Package channel defines what recon asks of a payment channel: the Lookup
// interface every adapter implements, the optional Closer and RefundLookup,
// the error classes that decide whether a failed call is retried, and
// Guarded, which wraps an adapter with a per-channel rate limit and retries
// with backoff (for refund lookups too).
//
// Adapters live in subpackages, one per provider kind.
package channel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/recon-dev/recon"
)

// Lookup asks a channel for the state of one order.
type Lookup interface {
	// Lookup returns the channel's verified, normalised view of o. An order
	// the channel does not know is a result (Status NOT_FOUND), not an error.
	// Errors are *Error values (see Transient, Permanent, RateLimited,
	// ErrBadSignature); an unclassified error counts as transient.
	Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error)
}

// Closer is implemented by channels with a close API.
type Closer interface {
	// CloseOrder asks the channel to close the unpaid order o so that it can
	// no longer be paid. Errors are classified like Lookup's.
	CloseOrder(ctx context.Context, o recon.Order) error
}

// Class says how a failed channel call may be retried.
type Class int

// Error classes.
const (
	// ClassTransient errors (timeouts, 5xx, connection resets) are retried.
	ClassTransient Class = iota
	// ClassPermanent errors (bad request, auth failure, malformed or
	// unverifiable response) are not retried within a run.
	ClassPermanent
	// ClassRateLimited errors are retried after at least RetryAfter.
	ClassRateLimited
)

func (c Class) String() string {
	switch c {
	case ClassPermanent:
		return "permanent"
	case ClassRateLimited:
		return "rate_limited"
	}
	return "transient"
}

// Error is a classified channel failure.
type Error struct {
	Class      Class
	RetryAfter time.Duration // ClassRateLimited: the channel's Retry-After, if any
	Err        error
}

func (e *Error) Error() string {
	if e.Class == ClassRateLimited && e.RetryAfter > 0 {
		return fmt.Sprintf("%s (retry after %s): %v", e.Class, e.RetryAfter, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Class, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrBadSignature is wrapped by every error about a response whose signature
// is missing or does not verify. Such a response is never a result.
var ErrBadSignature = errors.New("response signature does not verify")

// ErrMalformed is wrapped by errors about a response that cannot be parsed.
var ErrMalformed = errors.New("malformed response")

// Transient marks err as retryable.
func Transient(err error) error { return &Error{Class: ClassTransient, Err: err} }

// Permanent marks err as not retryable.
func Permanent(err error) error { return &Error{Class: ClassPermanent, Err: err} }

// RateLimited marks err as the channel asking us to slow down, retrying no
// sooner than after.
func RateLimited(after time.Duration, err error) error {
	return &Error{Class: ClassRateLimited, RetryAfter: after, Err: err}
}

// ClassOf returns the class of err. Unclassified errors are transient, except
// a bad signature or malformed response, which are permanent, and a cancelled
// context, which is permanent because retrying cannot help.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if errors.Is(err, ErrBadSignature) || errors.Is(err, ErrMalformed) || errors.Is(err, context.Canceled) {
		return ClassPermanent
	}
	return ClassTransient
}

// RetryAfterOf returns the Retry-After carried by a rate-limited error.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// maxRetryAfter caps a parsed Retry-After so that absurd values cannot
// overflow a time.Duration.
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads an HTTP Retry-After header: delay seconds or an HTTP
// date, relative to now. Empty, negative, past or unparseable values give 0;
// values beyond a day are capped at a day.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case secs <= 0:
			return 0
		case secs > int64(maxRetryAfter/time.Second):
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// RefundLookup is implemented by channels that can look a refund up
// (CONTRACT §10); like Closer, it is optional.
type RefundLookup interface {
	// LookupRefund returns the channel's verified, normalised view of
	// refund r. A refund the channel does not know is a result (Status
	// NOT_FOUND), not an error. Errors are classified like Lookup's.
	LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error)
}
