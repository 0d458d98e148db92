package channel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrCSVQuote is returned by SplitCSVLine for a line whose quotes do not
// close.
var ErrCSVQuote = errors.New("unterminated quoted field")

// ErrCSVField is wrapped by SplitCSVLine's error for a field longer than
// MaxCSVField.
var ErrCSVField = errors.New("field too long")

// MaxCSVField bounds one field of a statement line: the longest a provider
// writes (a product name, a merchant's attach data) is a few hundred bytes,
// and every field recon keeps is an id or an amount.
const MaxCSVField = 8 << 10

// SplitCSVLine splits one line of a provider's CSV statement (without its
// line ending) into fields, appending them to dst[:0]. Fields may be quoted
// as RFC 4180 says ("a, b" and "" for a quote inside); a quote inside an
// unquoted field is kept as it is, as providers' files have them. Statement
// parsers read their files line by line, so a quoted field cannot span
// lines. A field longer than MaxCSVField is an error wrapping ErrCSVField
// that names the field by its position.
func SplitCSVLine(dst []string, line string) ([]string, error) {
	dst, err := splitCSVLine(dst[:0], line)
	if err != nil {
		return dst, err
	}
	for i, f := range dst {
		if len(f) > MaxCSVField {
			return dst, fmt.Errorf("%w: field %d has %d bytes, more than %d", ErrCSVField, i+1, len(f), MaxCSVField)
		}
	}
	return dst, nil
}

func splitCSVLine(dst []string, line string) ([]string, error) {
	for {
		if !strings.HasPrefix(line, `"`) {
			i := strings.IndexByte(line, ',')
			if i < 0 {
				return append(dst, line), nil
			}
			dst = append(dst, line[:i])
			line = line[i+1:]
			continue
		}
		// A quoted field: read up to the closing quote, "" being a quote.
		var b strings.Builder
		rest := line[1:]
		for {
			i := strings.IndexByte(rest, '"')
			if i < 0 {
				return dst, ErrCSVQuote
			}
			b.WriteString(rest[:i])
			rest = rest[i+1:]
			if strings.HasPrefix(rest, `"`) {
				b.WriteByte('"')
				rest = rest[1:]
				continue
			}
			break
		}
		// Text between the closing quote and the comma (as in "a"\t) belongs
		// to the field.
		i := strings.IndexByte(rest, ',')
		if i < 0 {
			return append(dst, b.String()+rest), nil
		}
		dst = append(dst, b.String()+rest[:i])
		line = rest[i+1:]
	}
}

// QuoteCSV quotes s for a CSV field when it holds a comma, a quote or a line
// break, and returns it as it is otherwise.
func QuoteCSV(s string) string {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// ErrDecimal is wrapped by ParseDecimal's errors.
var ErrDecimal = errors.New("invalid decimal amount")

// ParseDecimal reads a signed decimal amount as a provider's statement writes
// it ("88.88", "-0.27000", "100") exactly, as an integer count of
// 10^-scale units: ParseDecimal("-0.27", 2) is -27. Digits after the
// scale-th decimal must be zeros. Exponents, spaces, thousands separators
// and values of more than 18 digits are errors wrapping ErrDecimal.
func ParseDecimal(s string, scale int) (int64, error) {
	text := s
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	} else if strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	whole, frac, dot := strings.Cut(s, ".")
	if !allDigits(whole) || whole == "" || (dot && (frac == "" || !allDigits(frac))) {
		return 0, fmt.Errorf("%w %q", ErrDecimal, Truncate(text))
	}
	if len(frac) > scale {
		if strings.Trim(frac[scale:], "0") != "" {
			return 0, fmt.Errorf("%w %q: more than %d decimals", ErrDecimal, Truncate(text), scale)
		}
		frac = frac[:scale]
	}
	digits := strings.TrimLeft(whole+frac+strings.Repeat("0", scale-len(frac)), "0")
	if len(digits) > 18 {
		return 0, fmt.Errorf("%w %q: too large", ErrDecimal, Truncate(text))
	}
	var n int64
	for i := 0; i < len(digits); i++ {
		n = n*10 + int64(digits[i]-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// FormatDecimal writes n units of 10^-scale as a decimal with exactly scale
// decimals: FormatDecimal(-27, 2) is "-0.27".
func FormatDecimal(n int64, scale int) string {
	sign := ""
	u := uint64(n)
	if n < 0 {
		sign, u = "-", uint64(-n)
	}
	s := strconv.FormatUint(u, 10)
	if scale == 0 {
		return sign + s
	}
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	return sign + s[:len(s)-scale] + "." + s[len(s)-scale:]
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// LineScanner reads a statement file one line at a time, numbering the
// lines from 1, without their line ends (LF or CRLF) and without the BOM
// of the first, refusing lines longer than the maximum it was given.
type LineScanner struct {
	sc      *bufio.Scanner
	n       int
	line    string
	maxLine int
}

// NewLineScanner scans r, whose lines are at most maxLine bytes.
func NewLineScanner(r io.Reader, maxLine int) *LineScanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(maxLine, 64<<10)), maxLine)
	return &LineScanner{sc: sc, maxLine: maxLine}
}

// Scan moves to the next line, reporting whether there is one.
func (s *LineScanner) Scan() bool {
	// A line the scanner hands on after its reader failed may be cut short
	// (the last bytes before a size cap): the error, not the line, is what
	// the file is refused for.
	if !s.sc.Scan() || s.sc.Err() != nil {
		return false
	}
	s.n++
	s.line = strings.TrimSuffix(s.sc.Text(), "\r")
	if s.n == 1 {
		s.line = strings.TrimPrefix(s.line, "\uFEFF")
	}
	return true
}

// Line is the current line; N its number.
func (s *LineScanner) Line() string { return s.line }

// N is the number of the current line (the last one read, after Scan
// returned false).
func (s *LineScanner) N() int { return s.n }

// Err is the error that stopped the scan, nil at the end of the file. It
// wraps ErrBadStatement, and the reader's error when that wraps it too
// (StatementLimits.Reader), and names the line.
func (s *LineScanner) Err() error {
	err := s.sc.Err()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("%w: line %d is longer than %d bytes", ErrBadStatement, s.n+1, s.maxLine)
	case errors.Is(err, ErrBadStatement):
		return fmt.Errorf("%w (after line %d)", err, s.n)
	}
	return fmt.Errorf("%w: after line %d: %v", ErrBadStatement, s.n, err)
}

// Bad is an error about the current line, wrapping ErrBadStatement.
func (s *LineScanner) Bad(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrBadStatement, s.n, fmt.Sprintf(format, args...))
}
