package wechatpay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Statement API: the trade bill (交易账单) of a day, all transactions.
const (
	TradeBillPath = "/v3/bill/tradebill"
	BillTypeAll   = "ALL"
	TarTypeGzip   = "GZIP"
	HashTypeSHA1  = "SHA1"
	// CodeNoStatementExist and CodeStatementCreating (400) answer a day
	// without a bill, or whose bill is not generated yet; so does the
	// message "No Bill Exist" of the older API.
	CodeNoStatementExist  = "NO_STATEMENT_EXIST"
	CodeStatementCreating = "STATEMENT_CREATING"
	MessageNoBillExist    = "No Bill Exist"
	// DownloadTimeout bounds the download of a bill, which may be large.
	DownloadTimeout = 10 * time.Minute
	// FeeScale is the number of decimals of 手续费 (fees in 10^-5 yuan).
	FeeScale = 5
)

// Trade states (交易状态) of the bill's rows.
const (
	BillSuccess = "SUCCESS"
	BillRefund  = "REFUND"
	BillRevoked = "REVOKED"
)

// Bill columns recon reads, by the names of the current layout and, where
// they differ, of the older one.
const (
	ColTime         = "交易时间"
	ColMchID        = "商户号"
	ColTransaction  = "微信订单号"
	ColOutTradeNo   = "商户订单号"
	ColState        = "交易状态"
	ColCurrency     = "货币种类"
	ColSettlement   = "应结订单金额"
	ColOrderTotal   = "订单金额"
	ColTotalOld     = "总金额"
	ColOutRefundNo  = "商户退款单号"
	ColRefund       = "退款金额"
	ColRefundAsked  = "申请退款金额"
	ColFee          = "手续费"
	SummaryRowCount = "总交易单数"
)

// summaryOf maps each summary column of both layouts to the detail column it
// totals. A summary column not listed is not checked.
var summaryOf = map[string]string{
	"应结订单总金额":       "应结订单金额",
	"退款总金额":         "退款金额",
	"充值券退款总金额":      "充值券退款金额",
	"手续费总金额":        "手续费",
	"订单总金额":         "订单金额",
	"申请退款总金额":       "申请退款金额",
	"总交易额":          "总金额",
	"总退款金额":         "退款金额",
	"总代金券或立减优惠退款金额": "代金券或立减优惠退款金额",
}

var _ channel.Statements = (*Client)(nil)

// BillURL is the answer of the trade bill API.
type BillURL struct {
	HashType    string `json:"hash_type"`
	HashValue   string `json:"hash_value"`
	DownloadURL string `json:"download_url"`
}

// TradeBillURI is the path and query asking for the trade bill of day.
func TradeBillURI(day string) string {
	q := url.Values{"bill_date": {day}, "bill_type": {BillTypeAll}, "tar_type": {TarTypeGzip}}
	return TradeBillPath + "?" + q.Encode()
}

// FetchStatement asks for the trade bill of day (GET /v3/bill/tradebill,
// bill_type ALL, tar_type GZIP), verifies the signed answer, downloads the
// file with a signed request (the download is not signed), decompresses it,
// and writes it to w only once its SHA-1 (of the decompressed bytes, BOM and
// CRLF included) matches hash_value. download_url is fetched over https
// (Config.Insecure keeps a plain-http one), following redirects on its
// host only, and the file may inflate to Config.StatementLimits at most.
// The source is download_url without its token.
func (c *Client) FetchStatement(ctx context.Context, day string, w io.Writer) (string, error) {
	const op = "statement"
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return "", channel.Permanent(c.errorf(op, day, "day is not YYYY-MM-DD"))
	}
	r, err := c.do(ctx, op, day, http.MethodGet, TradeBillURI(day), nil)
	if err != nil {
		return "", err
	}
	bill, err := c.decodeBillURL(r, day)
	if err != nil {
		return "", err
	}
	u, err := channel.SecureLink(bill.DownloadURL, c.cfg.Insecure)
	if err != nil {
		return "", channel.Permanent(c.errorf(op, day, "%w: %v", channel.ErrMalformed, err))
	}
	source := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	if err := c.download(ctx, day, u, bill.HashValue, w); err != nil {
		return "", err
	}
	return source, nil
}

// decodeBillURL judges the answer of the trade bill API.
func (c *Client) decodeBillURL(r Reply, day string) (BillURL, error) {
	const op = "statement"
	if err := c.fault(r, op, day); err != nil {
		return BillURL{}, err
	}
	if err := c.verifier.Verify(r.Header, r.Body); err != nil {
		return BillURL{}, channel.Permanent(c.errorf(op, day, "HTTP %d: %w: %s", r.StatusCode, err, channel.Snippet(r.Body)))
	}
	if r.StatusCode != http.StatusOK {
		e, err := ParseAPIError(r.Body)
		if err == nil && (e.Code == CodeNoStatementExist || e.Code == CodeStatementCreating || e.Message == MessageNoBillExist) {
			return BillURL{}, channel.Permanent(c.errorf(op, day, "%w: %s %s", channel.ErrNoStatement, e.Code, channel.Truncate(e.Message)))
		}
		return BillURL{}, channel.Permanent(c.errorf(op, day, "HTTP %d: %s", r.StatusCode, channel.Snippet(r.Body)))
	}
	var b BillURL
	if err := json.Unmarshal(r.Body, &b); err != nil {
		return BillURL{}, channel.Permanent(c.errorf(op, day, "%w: %v: %s", channel.ErrMalformed, err, channel.Snippet(r.Body)))
	}
	u, err := url.Parse(b.DownloadURL)
	switch {
	case b.HashType != HashTypeSHA1:
		return BillURL{}, channel.Permanent(c.errorf(op, day, "%w: hash_type %q is not SHA1", channel.ErrMalformed, channel.Truncate(b.HashType)))
	case len(b.HashValue) != 2*sha1.Size || !isHex(b.HashValue):
		return BillURL{}, channel.Permanent(c.errorf(op, day, "%w: hash_value %q is not a SHA-1", channel.ErrMalformed, channel.Truncate(b.HashValue)))
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return BillURL{}, channel.Permanent(c.errorf(op, day, "%w: download_url is not an absolute http(s) URL", channel.ErrMalformed))
	}
	return b, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// download GETs the bill with a signed request, decompresses it when it is
// gzip, checks its SHA-1 against hash and only then copies it to w. The file
// is staged in a temporary file, so that nothing unverified reaches w.
func (c *Client) download(ctx context.Context, day string, u *url.URL, hash string, w io.Writer) error {
	const op = "statement"
	auth, err := SignRequest(c.cfg.PrivateKey, c.cfg.MchID, c.cfg.CertSerial, http.MethodGet, u.RequestURI(), nil, c.cfg.Now().Unix(), NewNonce())
	if err != nil {
		return channel.Permanent(c.errorf(op, day, "%w", err))
	}
	dctx, cancel := context.WithTimeout(ctx, DownloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(dctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return channel.Permanent(c.errorf(op, day, "build download request: %w", err))
	}
	req.Header.Set("Authorization", auth.String())
	req.Header.Set("Accept", "*/*")
	req.Header.Set("User-Agent", "recon-wechatpay")
	resp, err := channel.DownloadClient(c.cfg.HTTPClient, c.cfg.Insecure).Do(req)
	if errors.Is(err, channel.ErrRedirectRefused) {
		return channel.Permanent(c.errorf(op, day, "%w: download: %w", channel.ErrBadStatement, err))
	}
	if err != nil {
		return c.networkError(ctx, op, day, fmt.Errorf("download: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, channel.MaxSnippet))
		r := Reply{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}
		if err := c.fault(r, op, day); err != nil {
			return err
		}
		return channel.Permanent(c.errorf(op, day, "download: HTTP %d: %s", resp.StatusCode, channel.Snippet(body)))
	}
	br := bufio.NewReader(resp.Body)
	var src io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return channel.Permanent(c.errorf(op, day, "%w: download: %v", channel.ErrBadStatement, err))
		}
		src = zr
	}
	tmp, err := os.CreateTemp("", "recon-wechatpay-bill-*")
	if err != nil {
		return channel.Transient(c.errorf(op, day, "stage download: %w", err))
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	sum := sha1.New()
	_, err = io.Copy(io.MultiWriter(tmp, sum), c.cfg.StatementLimits.Reader(src))
	switch {
	case errors.Is(err, channel.ErrStatementTooLarge):
		return channel.Permanent(c.errorf(op, day, "download: %w", err))
	case err != nil && ctx.Err() == nil && (errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF)):
		return channel.Permanent(c.errorf(op, day, "%w: download: %v", channel.ErrBadStatement, err))
	case err != nil:
		return c.networkError(ctx, op, day, fmt.Errorf("download: %w", err))
	}
	if got := hex.EncodeToString(sum.Sum(nil)); !strings.EqualFold(got, hash) {
		return channel.Permanent(c.errorf(op, day, "%w: SHA-1 of the file is %s, hash_value says %s", channel.ErrBadStatement, got, strings.ToLower(hash)))
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return channel.Transient(c.errorf(op, day, "stage download: %w", err))
	}
	if _, err := io.Copy(w, tmp); err != nil {
		return fmt.Errorf("wechatpay %s: %s %s: write: %w", c.cfg.Name, op, day, err)
	}
	return nil
}

// SetStatementLimits bounds the bills of the client
// (Config.StatementLimits). Call it before the client is used.
func (c *Client) SetStatementLimits(l channel.StatementLimits) { c.cfg.StatementLimits = l }

// BillCheck is what a bill must say of itself.
type BillCheck struct {
	// Day is the bill's day (YYYY-MM-DD): every row's 交易时间 must lie in
	// it, in Beijing time (WeChat Pay's bill day, whatever
	// statements.timezone says). WeChat Pay's documentation of the trade
	// bill says it holds the payments that succeeded that day and the
	// refunds initiated that day, and that 交易时间 is the time the payment
	// succeeded or the refund was initiated (not when the refund completed),
	// so no row of a genuine bill lies outside its day.
	Day string
	// MchID, when set, is the merchant number every row's 商户号 must be
	// (documented as the merchant the order was placed with: the mch_id
	// recon signs its requests as).
	MchID string
	// Limits bound the bill, decompressed.
	Limits channel.StatementLimits
}

// ParseStatement reads a trade bill, decompressed (as FetchStatement writes
// it) or gzip (as tar_type=GZIP downloads it by hand); see ParseBill. Its
// rows must be of the channel's mch_id.
func (c *Client) ParseStatement(r io.ReaderAt, size int64, day string, loc *time.Location, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	var src io.Reader = io.NewSectionReader(r, 0, size)
	var magic [2]byte
	if n, _ := r.ReadAt(magic[:], 0); n == 2 && magic == [2]byte{0x1f, 0x8b} {
		zr, err := gzip.NewReader(src)
		if err != nil {
			return recon.StatementTotals{}, fmt.Errorf("%w: gzip: %v", channel.ErrBadStatement, err)
		}
		src = zr
	}
	return ParseBill(src, BillCheck{Day: day, MchID: c.cfg.MchID, Limits: c.cfg.StatementLimits}, emit)
}

// ParseBill reads a trade bill (bill_type ALL) as WeChat Pay serves it,
// decompressed: UTF-8 with a BOM, CRLF line ends, a header row, one row per
// transaction with every field prefixed by a backtick, then a summary header
// (总交易单数,应结订单总金额,退款总金额,…) and one summary row. Columns are
// found by name, so the current layout and the older one (总金额,
// 代金券或立减优惠金额, …; summary 总交易单数,总交易额,总退款金额,…) read
// alike.
//
// A SUCCESS row is a payment of 订单金额 (总金额 in the older layout); a
// REFUND row a refund of 申请退款金额 (退款金额 in the older layout) numbered
// by 商户退款单号; REVOKED rows are skipped. 手续费 has five decimals: a
// line's fee is rounded to fen (half away from zero), the sums are checked
// exactly. Times are Beijing time. The summary must match the rows: 总交易单数
// their count, and each amount total the sum of its column; the totals
// returned are the summary's (amounts rounded to fen). A bill with a row
// of another 商户号 than check's, or outside check's day, or larger than
// check.Limits, is refused. Every error about the file wraps
// channel.ErrBadStatement and names the line.
func ParseBill(r io.Reader, check BillCheck, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	start, end, err := channel.DayWindow(check.Day, chinaTime)
	if err != nil {
		return recon.StatementTotals{}, fmt.Errorf("%w: %v", channel.ErrBadStatement, err)
	}
	sc := channel.NewLineScanner(check.Limits.Reader(r), MaxLineBytes)
	var (
		summaryLine   int
		col           map[string]int
		names         []string
		sumCols       []int64 // per header column, in 10^-5 yuan
		rows          int64
		payments      int64
		refunds       int64
		summaryHeader []string
		summary       []string
		fields        []string
		summed        []bool // per header column: some summary column totals it
	)
	bad := sc.Bad
	for sc.Scan() {
		line := sc.Line()
		if !utf8.ValidString(line) {
			return recon.StatementTotals{}, bad("not UTF-8 text")
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if summary != nil {
			return recon.StatementTotals{}, bad("text after the summary row")
		}
		if fields, err = channel.SplitCSVLine(fields, line); err != nil {
			return recon.StatementTotals{}, bad("%v", err)
		}
		switch {
		case col == nil:
			col = map[string]int{}
			for i, name := range fields {
				name = strings.TrimSpace(name)
				col[name] = i
				names = append(names, name)
			}
			for _, need := range []string{ColTime, ColMchID, ColTransaction, ColOutTradeNo, ColState, ColCurrency, ColFee} {
				if _, ok := col[need]; !ok {
					return recon.StatementTotals{}, bad("header has no %s column (not a WeChat Pay trade bill?)", need)
				}
			}
			_, okNew := col[ColOrderTotal]
			_, okOld := col[ColTotalOld]
			if !okNew && !okOld {
				return recon.StatementTotals{}, bad("header has neither %s nor %s", ColOrderTotal, ColTotalOld)
			}
			sumCols = make([]int64, len(names))
			summed = make([]bool, len(names))
			for _, detail := range summaryOf {
				if i, ok := col[detail]; ok {
					summed[i] = true
				}
			}
			continue
		case summaryHeader == nil && strings.TrimSpace(fields[0]) == SummaryRowCount:
			summaryHeader = append([]string(nil), fields...)
			continue
		case summaryHeader != nil:
			summary, summaryLine = append([]string(nil), fields...), sc.N()
			continue
		}
		if len(fields) != len(names) {
			return recon.StatementTotals{}, bad("%d fields, the header has %d", len(fields), len(names))
		}
		for i := range fields {
			if !strings.HasPrefix(fields[i], "`") {
				return recon.StatementTotals{}, bad("field %s does not start with a backtick", names[i])
			}
			fields[i] = strings.TrimSpace(fields[i][1:])
		}
		if mch := fields[col[ColMchID]]; check.MchID != "" && mch != check.MchID {
			return recon.StatementTotals{}, bad("%s %s is not the channel's mch_id %s", ColMchID, channel.Truncate(mch), check.MchID)
		}
		rows++
		for i, name := range names {
			if !summed[i] {
				continue
			}
			v, err := channel.ParseDecimal(orZero(fields[i]), FeeScale)
			if err != nil {
				return recon.StatementTotals{}, bad("%s: %v", name, err)
			}
			sumCols[i] += v
		}
		l, ok, err := parseBillRow(col, fields, sc.N())
		if err != nil {
			return recon.StatementTotals{}, bad("%v", err)
		}
		if !ok {
			continue
		}
		if why := channel.OutsideDay(ColTime, l.OccurredAt, start, end, check.Day); why != "" {
			return recon.StatementTotals{}, bad("%s", why)
		}
		if err := l.Validate(); err != nil {
			return recon.StatementTotals{}, bad("%v", err)
		}
		if l.Kind == recon.LineRefund {
			refunds++
		} else {
			payments++
		}
		if err := emit(l); err != nil {
			return recon.StatementTotals{}, err
		}
	}
	if err := sc.Err(); err != nil {
		return recon.StatementTotals{}, err
	}
	switch {
	case col == nil:
		return recon.StatementTotals{}, sc.Bad("no header row")
	case summary == nil:
		return recon.StatementTotals{}, sc.Bad("no summary row (truncated file?)")
	}
	return checkSummary(summaryLine, names, sumCols, rows, payments, refunds, summaryHeader, summary)
}

// MaxLineBytes bounds one line of a bill.
const MaxLineBytes = 64 << 10

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// checkSummary compares the summary row with the rows' count and sums and
// returns the file's totals.
func checkSummary(lineNo int, names []string, sums []int64, rows, payments, refunds int64, header, summary []string) (recon.StatementTotals, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: line %d: summary: %s", channel.ErrBadStatement, lineNo, fmt.Sprintf(format, args...))
	}
	if len(summary) != len(header) {
		return recon.StatementTotals{}, bad("%d fields, its header has %d", len(summary), len(header))
	}
	col := map[string]int{}
	for i, n := range names {
		col[n] = i
	}
	stated := map[string]int64{}
	for i, name := range header {
		name = strings.TrimSpace(name)
		v := strings.TrimSpace(strings.TrimPrefix(summary[i], "`"))
		if name == SummaryRowCount {
			n, err := channel.ParseDecimal(v, 0)
			if err != nil {
				return recon.StatementTotals{}, bad("%s: %v", name, err)
			}
			if n != rows {
				return recon.StatementTotals{}, bad("%s says %d rows, the file has %d", name, n, rows)
			}
			continue
		}
		detail, ok := summaryOf[name]
		if !ok {
			continue // a total recon does not know: nothing to check it with
		}
		amount, err := channel.ParseDecimal(v, FeeScale)
		if err != nil {
			return recon.StatementTotals{}, bad("%s: %v", name, err)
		}
		i, ok := col[detail]
		if !ok {
			return recon.StatementTotals{}, bad("%s totals a column %s the rows do not have", name, detail)
		}
		if amount != sums[i] {
			return recon.StatementTotals{}, bad("%s says %s, the rows add up to %s", name,
				channel.FormatDecimal(amount, FeeScale), channel.FormatDecimal(sums[i], FeeScale))
		}
		stated[detail] = amount
	}
	fen := func(detail ...string) int64 {
		for _, d := range detail {
			if v, ok := stated[d]; ok {
				return roundFen(v)
			}
		}
		return 0
	}
	return recon.StatementTotals{Present: true,
		PaymentsCount: payments, PaymentsAmount: fen(ColOrderTotal, ColTotalOld),
		RefundsCount: refunds, RefundsAmount: fen(ColRefundAsked, ColRefund),
		FeesAmount: fen(ColFee)}, nil
}

// roundFen rounds 10^-5 yuan to fen, half away from zero.
func roundFen(v int64) int64 {
	if v < 0 {
		return -((-v + 500) / 1000)
	}
	return (v + 500) / 1000
}

// parseBillRow reads one row (fields without their backticks): ok is false
// for a row that is neither a payment nor a refund.
func parseBillRow(col map[string]int, fields []string, lineNo int) (recon.StatementLine, bool, error) {
	get := func(name string) (string, bool) {
		i, ok := col[name]
		if !ok {
			return "", false
		}
		return fields[i], true
	}
	must := func(name string) string { v, _ := get(name); return v }
	l := recon.StatementLine{LineNo: lineNo, ChannelTxnID: must(ColTransaction), OrderNo: must(ColOutTradeNo)}
	state := must(ColState)
	var amountCols []string
	switch state {
	case BillSuccess:
		l.Kind, amountCols = recon.LinePayment, []string{ColOrderTotal, ColTotalOld}
	case BillRefund:
		l.Kind, amountCols = recon.LineRefund, []string{ColRefundAsked, ColRefund}
		l.RefundNo = must(ColOutRefundNo)
	case BillRevoked:
		return l, false, nil
	default:
		return l, false, fmt.Errorf("%s %q is not SUCCESS, REFUND or REVOKED", ColState, channel.Truncate(state))
	}
	l.Currency = strings.ToUpper(must(ColCurrency))
	if !recon.ValidCurrency(l.Currency) {
		return l, false, fmt.Errorf("%s %q is not a currency", ColCurrency, channel.Truncate(l.Currency))
	}
	for _, name := range amountCols {
		v, ok := get(name)
		if !ok {
			continue
		}
		n, err := channel.ParseDecimal(orZero(v), 2)
		if err != nil {
			return l, false, fmt.Errorf("%s: %v", name, err)
		}
		if n < 0 {
			return l, false, fmt.Errorf("%s %s is negative", name, v)
		}
		l.Amount = n
		break
	}
	fee, err := channel.ParseDecimal(orZero(must(ColFee)), FeeScale)
	if err != nil {
		return l, false, fmt.Errorf("%s: %v", ColFee, err)
	}
	l.Fee = roundFen(fee)
	when := strings.ReplaceAll(must(ColTime), "：", ":")
	t, err := time.ParseInLocation(time.DateTime, when, chinaTime)
	if err != nil {
		return l, false, fmt.Errorf("%s %q is not a time", ColTime, channel.Truncate(when))
	}
	l.OccurredAt = t.UTC()
	return l, true, nil
}

// chinaTime is the zone of the bill's times (UTC+8, no daylight saving).
var chinaTime = time.FixedZone("CST", 8*3600)
