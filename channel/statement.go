package channel

import (
	"context"
	"errors"
	"io"
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
