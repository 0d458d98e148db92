package alipay

import (
	"archive/zip"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Statement API: the method that answers a day's bill download URL, and the
// bill type recon asks for (the trade bill, 交易账单).
const (
	MethodBillDownloadURL = "alipay.data.dataservice.bill.downloadurl.query"
	BillTypeTrade         = "trade"
	// SubBillNotExist answers a day without a bill (no business, or not
	// generated yet).
	SubBillNotExist = "isp.bill_not_exist"
	// DownloadTimeout bounds the download of a bill, which may be large
	// (Timeout bounds the gateway call before it).
	DownloadTimeout = 10 * time.Minute
)

// Column names of the detail file (业务明细) recon reads, as they appear in
// its header row (full-width parentheses normalised to ASCII ones).
const (
	ColTradeNo     = "支付宝交易号"
	ColOutTradeNo  = "商户订单号"
	ColBizType     = "业务类型"
	ColCreated     = "创建时间"
	ColFinished    = "完成时间"
	ColTotal       = "订单金额(元)"
	ColReceipt     = "商家实收(元)"
	ColRefundNo    = "退款批次号/请求号"
	ColRefundNoOld = "退款批次号"
	ColServiceFee  = "服务费(元)"
)

// Business types (业务类型) recon reads; other rows are skipped.
const (
	BizTrade  = "交易"
	BizRefund = "退款"
)

var _ channel.Statements = (*Client)(nil)

// BillDownloadURL is the alipay_data_dataservice_bill_downloadurl_query_response
// node.
type BillDownloadURL struct {
	Result
	BillDownloadURL string `json:"bill_download_url,omitempty"`
}

// BillRequest returns the signed form asking for the trade bill of day
// (YYYY-MM-DD), timestamped now.
func BillRequest(appID string, key *rsa.PrivateKey, day string, now time.Time) (url.Values, error) {
	return signedForm(appID, key, MethodBillDownloadURL, struct {
		BillType string `json:"bill_type"`
		BillDate string `json:"bill_date"`
	}{BillTypeTrade, day}, now)
}

// ParseBillDownloadURL reads a verified bill download URL node: the URL, an
// error wrapping channel.ErrNoStatement for isp.bill_not_exist, a
// classified *Error for other failures.
func ParseBillDownloadURL(node []byte) (string, error) {
	var b BillDownloadURL
	if err := json.Unmarshal(node, &b); err != nil {
		return "", malformed(node, "%v", err)
	}
	switch {
	case b.Code == "":
		return "", malformed(node, "no code")
	case b.SubCode == SubBillNotExist:
		return "", channel.Permanent(fmt.Errorf("%w: %s", channel.ErrNoStatement, &Error{Method: MethodBillDownloadURL, Result: b.Result}))
	case b.Code != CodeSuccess:
		return "", classify(&Error{Method: MethodBillDownloadURL, Result: b.Result})
	}
	u, err := url.Parse(b.BillDownloadURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", malformed(node, "bill_download_url is not an absolute http(s) URL")
	}
	return b.BillDownloadURL, nil
}

// FetchStatement asks for the trade bill of day and downloads it at once (the
// URL expires in about 30 seconds), writing the zip to w. The gateway's
// answer is verified like a lookup's; the zip itself is not signed, so it is
// staged first and written to w only once its head names the account of the
// signed URL (its userId, and Config.PID when set) and day (ParseBill checks
// the rest when it is imported). The link is fetched over https (Alipay's
// documented sample answer is a plain-http link to dwbillcenter.alipay.com,
// which serves https; Config.Insecure keeps http), following redirects on
// its host only. The source is the download URL without its query, which
// carries the access token.
func (c *Client) FetchStatement(ctx context.Context, day string, w io.Writer) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("alipay %s: statement %s: %w", c.cfg.Name, day, err)
	}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return fail(channel.Permanent(fmt.Errorf("day %q is not YYYY-MM-DD", channel.Truncate(day))))
	}
	form, err := BillRequest(c.cfg.AppID, c.cfg.PrivateKey, day, c.cfg.Now())
	if err != nil {
		return fail(channel.Permanent(err))
	}
	node, err := c.post(ctx, MethodBillDownloadURL, form)
	if err != nil {
		return fail(err)
	}
	link, err := ParseBillDownloadURL(node)
	if err != nil {
		return fail(err)
	}
	u, err := channel.SecureLink(link, c.cfg.Insecure)
	if err != nil {
		return fail(channel.Permanent(fmt.Errorf("%w: %v", channel.ErrMalformed, err)))
	}
	account := u.Query().Get("userId")
	switch {
	case account == "":
		account = c.cfg.PID
	case c.cfg.PID != "" && !sameAccount(c.cfg.PID, account):
		return fail(channel.Permanent(fmt.Errorf("%w: the signed download URL is for account %s, not the channel's pid %s",
			channel.ErrBadStatement, channel.Truncate(account), c.cfg.PID)))
	}
	source := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	tmp, err := os.CreateTemp("", "recon-alipay-bill-*")
	if err != nil {
		return fail(channel.Transient(fmt.Errorf("stage download: %w", err)))
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	n, err := c.download(ctx, u.String(), tmp)
	if err != nil {
		return fail(err)
	}
	check := BillCheck{Day: day, Account: account, Limits: c.cfg.StatementLimits}
	if _, err := parseBill(tmp, n, check, true, nil); err != nil {
		return fail(channel.Permanent(err))
	}
	if _, err := io.Copy(w, io.NewSectionReader(tmp, 0, n)); err != nil {
		return fail(fmt.Errorf("write: %w", err))
	}
	return source, nil
}

// download GETs the bill at link into w, which is at most the bytes of
// Config.StatementLimits, following redirects on the link's host only (see
// channel.DownloadClient), and returns its size.
func (c *Client) download(ctx context.Context, link string, w io.Writer) (int64, error) {
	dctx, cancel := context.WithTimeout(ctx, DownloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(dctx, http.MethodGet, link, nil)
	if err != nil {
		return 0, channel.Permanent(fmt.Errorf("build download request: %w", err))
	}
	resp, err := channel.DownloadClient(c.cfg.HTTPClient, c.cfg.Insecure).Do(req)
	if err != nil {
		if errors.Is(err, channel.ErrRedirectRefused) {
			return 0, channel.Permanent(fmt.Errorf("%w: download: %w", channel.ErrBadStatement, err))
		}
		return 0, channel.NetworkError(ctx, fmt.Errorf("download: %w", err), nil)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return 0, channel.RateLimited(channel.ParseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Now()), errors.New("download: HTTP 429"))
	case resp.StatusCode >= 500:
		return 0, channel.Transient(fmt.Errorf("download: HTTP %d", resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return 0, channel.Permanent(fmt.Errorf("download: HTTP %d", resp.StatusCode))
	}
	lim := c.cfg.StatementLimits.OrDefault()
	n, err := io.Copy(w, io.LimitReader(resp.Body, lim.MaxBytes+1))
	switch {
	case err != nil:
		return 0, channel.NetworkError(ctx, fmt.Errorf("download: %w", err), nil)
	case n > lim.MaxBytes:
		return 0, channel.Permanent(fmt.Errorf("download: %w", lim.TooLarge()))
	}
	return n, nil
}

// sameAccount reports whether a bill's account (#账号, or a download URL's
// userId) is the channel's pid: equal, or the pid followed by 0156, the
// suffix Alipay's bills and download URLs print after the partner ID.
func sameAccount(pid, account string) bool {
	pid, account = strings.TrimSuffix(pid, accountSuffix), strings.TrimSuffix(account, accountSuffix)
	return pid == account
}

// accountSuffix follows the partner ID in the account a bill names
// (#账号：[20881234567890120156]) and in the download URL's userId.
const accountSuffix = "0156"

// pidPattern is a partner ID, or the account a bill names.
var pidPattern = regexp.MustCompile(`^2088\d{12}(0156)?$`)

// ValidPID reports whether s is a partner ID (2088 and 12 digits) or the
// account a bill names (that followed by 0156), as Config.PID must be.
func ValidPID(s string) bool { return pidPattern.MatchString(s) }

// PIDRule says what a valid PID is, for errors about the setting.
const PIDRule = "must be the partner ID, 2088 followed by 12 digits (or the bill account, the partner ID followed by 0156)"

// SetStatementLimits bounds the bills of the client
// (Config.StatementLimits). Call it before the client is used.
func (c *Client) SetStatementLimits(l channel.StatementLimits) { c.cfg.StatementLimits = l }

// ParseStatement reads a trade bill zip; see ParseBill. The account is
// checked against Config.PID when it is set.
func (c *Client) ParseStatement(r io.ReaderAt, size int64, day string, loc *time.Location, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	return ParseBill(r, size, BillCheck{Day: day, Account: c.cfg.PID, Limits: c.cfg.StatementLimits}, emit)
}

// BillCheck is what a bill must say of itself.
type BillCheck struct {
	// Day is the bill's day (YYYY-MM-DD): its #起始日期 and 终止日期 must be
	// that day's midnight and the next, and every row's time must lie
	// between them, in Beijing time (Alipay's bill day, whatever
	// statements.timezone says).
	Day string
	// Account, when set, is the account #账号 must name (a partner ID
	// matches the account it prints followed by 0156).
	Account string
	// Limits bound the detail file, decompressed.
	Limits channel.StatementLimits
}

// ParseBill reads a trade bill zip as Alipay serves it: GBK-encoded CSVs with
// GBK file names, the detail in "…_业务明细.csv" (the "…_业务明细(汇总).csv"
// summary beside it is not read: the detail's footer has the totals). A
// file that is not a zip is read as the detail file itself, unzipped by
// hand. The detail is streamed: `#` comment lines (#账号：[…], #起始日期：[…]
// 终止日期：[…]), a header row, one row per payment (业务类型 交易) or refund
// (退款, negative amounts, reusing the trade's numbers, its request number in
// 退款批次号/请求号), then `#` footer lines with the day's totals
// (#交易合计：N笔，商家实收共X元… and #退款合计：…). Columns are found by name,
// so the 25- and 29-column layouts read alike; rows of other business types
// are skipped. A payment's amount is 订单金额 (the order total), its fee
// 服务费 as written (negative: a cost); times are Beijing time (完成时间, else
// 创建时间). The counts and 商家实收 sums of the rows must equal the
// footer's, which are the totals returned. A bill that is not of check's
// account and day, has a row outside the day, or decompresses past
// check.Limits is refused. Every error about the file wraps
// channel.ErrBadStatement and names the line of the detail file.
func ParseBill(r io.ReaderAt, size int64, check BillCheck, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	return parseBill(r, size, check, false, emit)
}

// parseBill is ParseBill; headOnly stops at the header row, once the
// account and the day are checked.
func parseBill(r io.ReaderAt, size int64, check BillCheck, headOnly bool, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	var magic [4]byte
	if n, _ := r.ReadAt(magic[:], 0); n > 0 && string(magic[:n]) != "PK\x03\x04"[:n] {
		// Not a zip: the detail file on its own, unzipped by hand.
		return parseGBKDetail(io.NewSectionReader(r, 0, size), "", check, headOnly, emit)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return recon.StatementTotals{}, fmt.Errorf("%w: not a zip file: %v", channel.ErrBadStatement, err)
	}
	var detail *zip.File
	for _, f := range zr.File {
		name := ZipName(f)
		if strings.HasSuffix(name, "业务明细.csv") {
			if detail != nil {
				return recon.StatementTotals{}, fmt.Errorf("%w: two detail files (业务明细.csv) in the zip", channel.ErrBadStatement)
			}
			detail = f
		}
	}
	if detail == nil {
		return recon.StatementTotals{}, fmt.Errorf("%w: no detail file (…_业务明细.csv) in the zip", channel.ErrBadStatement)
	}
	if lim := check.Limits.OrDefault(); detail.UncompressedSize64 > uint64(lim.MaxBytes) {
		// The zip says so itself; the reader's cap catches one that lies.
		return recon.StatementTotals{}, fmt.Errorf("%s: %w (the zip says %d)", ZipName(detail), lim.TooLarge(), detail.UncompressedSize64)
	}
	rc, err := detail.Open()
	if err != nil {
		return recon.StatementTotals{}, fmt.Errorf("%w: %s: %v", channel.ErrBadStatement, ZipName(detail), err)
	}
	defer rc.Close()
	return parseGBKDetail(rc, ZipName(detail), check, headOnly, emit)
}

// parseGBKDetail reads a GBK detail file named name ("" for none).
func parseGBKDetail(r io.Reader, name string, check BillCheck, headOnly bool, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	r = check.Limits.Reader(r)
	totals, err := parseDetail(transform.NewReader(r, simplifiedchinese.GBK.NewDecoder()), check, headOnly, emit)
	var ee emitError
	switch {
	case errors.As(err, &ee):
		return totals, ee.err
	case err != nil && name != "":
		return totals, fmt.Errorf("%s: %w", name, err)
	}
	return totals, err
}

// ZipName is a zip entry's name in UTF-8: Alipay writes the names in GBK
// without the zip's UTF-8 flag.
func ZipName(f *zip.File) string {
	if f.Flags&0x800 != 0 || (utf8.ValidString(f.Name) && !f.NonUTF8) {
		return f.Name
	}
	if s, err := simplifiedchinese.GBK.NewDecoder().String(f.Name); err == nil {
		return s
	}
	return f.Name
}

// emitError carries an error returned by emit, which ParseBill passes on as
// it is.
type emitError struct{ err error }

func (e emitError) Error() string { return e.err.Error() }

// MaxLineBytes bounds one line of a statement file.
const MaxLineBytes = 64 << 10

// periodLine matches the comment line with the bill's period:
// "#起始日期：[2026年11月30日 00:00:00]   终止日期：[2026年12月01日 00:00:00]".
var periodLine = regexp.MustCompile(`^#起始日期[：:]\[([^\]]*)\]\s*终止日期[：:]\[([^\]]*)\]`)

// accountLine matches the comment line naming the bill's account:
// "#账号：[20881234567890120156]".
var accountLine = regexp.MustCompile(`^#账号[：:]\[([^\]]*)\]`)

// periodLayout is the layout of the period's times.
const periodLayout = "2006年01月02日 15:04:05"

// footerLine matches a footer total: "#交易合计：6笔，商家实收共0.06元，…".
var footerLine = regexp.MustCompile(`^#(交易|退款)合计[：:]\s*(\d+)笔[，,](.*)$`)

// footerPart matches one "name共amount元" part of a footer line.
var footerPart = regexp.MustCompile(`^(.*?)共\s*(-?\d+(?:\.\d+)?)\s*元$`)

// footerTotal is one footer line read.
type footerTotal struct {
	seen      bool
	line      int // its line in the file
	count     int64
	amount    int64 // fen, signed as written
	receipt   bool  // the amount is 商家实收 (else 订单金额, the older wording)
	fee       int64
	feeStated bool
}

// sums are what the rows add up to, per business type.
type sums struct {
	count, total, receipt, fee int64
}

func parseDetail(rd io.Reader, check BillCheck, headOnly bool, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	start, end, err := channel.DayWindow(check.Day, Beijing)
	if err != nil {
		return recon.StatementTotals{}, fmt.Errorf("%w: %v", channel.ErrBadStatement, err)
	}
	sc := channel.NewLineScanner(rd, MaxLineBytes)
	var (
		col                   map[string]int
		inFooter              bool
		trade, refund         footerTotal
		tradeSums, refundSums sums
		fields                []string
		account               *string
		period                bool
	)
	bad := sc.Bad
	for sc.Scan() {
		line := sc.Line()
		if strings.ContainsRune(line, utf8.RuneError) {
			return recon.StatementTotals{}, bad("not GBK text")
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			if col != nil {
				inFooter = true
			}
			if col == nil {
				if m := accountLine.FindStringSubmatch(line); m != nil {
					if check.Account != "" && !sameAccount(check.Account, m[1]) {
						return recon.StatementTotals{}, bad("the bill is of account #账号 %s, not the channel's %s", channel.Truncate(m[1]), check.Account)
					}
					account = &m[1]
				}
				if m := periodLine.FindStringSubmatch(line); m != nil {
					from, ferr := time.ParseInLocation(periodLayout, m[1], Beijing)
					to, terr := time.ParseInLocation(periodLayout, m[2], Beijing)
					if ferr != nil || terr != nil || !from.Equal(start) || !to.Equal(end) {
						return recon.StatementTotals{}, bad("the bill covers #起始日期 %s to 终止日期 %s, not the day %s (%s to %s)",
							channel.Truncate(m[1]), channel.Truncate(m[2]), check.Day, start.Format(periodLayout), end.Format(periodLayout))
					}
					period = true
				}
			}
			m := footerLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if col == nil {
				return recon.StatementTotals{}, bad("totals before the header row")
			}
			ft, ferr := parseFooter(m[2], m[3])
			if ferr != nil {
				return recon.StatementTotals{}, bad("%v", ferr)
			}
			dst := &trade
			if m[1] == "退款" {
				dst = &refund
			}
			if dst.seen {
				return recon.StatementTotals{}, bad("%s合计 given twice", m[1])
			}
			*dst = ft
			dst.line = sc.N()
			continue
		}
		if inFooter {
			return recon.StatementTotals{}, bad("a row after the footer")
		}
		if fields, err = channel.SplitCSVLine(fields, line); err != nil {
			return recon.StatementTotals{}, bad("%v", err)
		}
		if col == nil {
			switch {
			case !period:
				return recon.StatementTotals{}, bad("no #起始日期/终止日期 line before the header row: the bill's day is unknown (want %s)", check.Day)
			case account == nil && check.Account != "":
				return recon.StatementTotals{}, bad("no #账号 line before the header row: the bill's account is unknown (want %s)", check.Account)
			}
			col = map[string]int{}
			for i, name := range fields {
				col[normName(name)] = i
			}
			for _, need := range []string{ColTradeNo, ColOutTradeNo, ColBizType, ColFinished, ColTotal, ColReceipt} {
				if _, ok := col[need]; !ok {
					return recon.StatementTotals{}, bad("header has no %s column (not an Alipay trade bill in GBK?)", need)
				}
			}
			if headOnly {
				return recon.StatementTotals{}, nil
			}
			continue
		}
		l, s, ok, rerr := parseRow(col, fields, sc.N())
		if rerr != nil {
			return recon.StatementTotals{}, bad("%v", rerr)
		}
		if !ok {
			continue
		}
		if why := channel.OutsideDay(ColFinished, l.OccurredAt, start, end, check.Day); why != "" {
			return recon.StatementTotals{}, bad("%s", why)
		}
		dst := &tradeSums
		if l.Kind == recon.LineRefund {
			dst = &refundSums
		}
		dst.count++
		dst.total += s.total
		dst.receipt += s.receipt
		dst.fee += s.fee
		if err := l.Validate(); err != nil {
			return recon.StatementTotals{}, bad("%v", err)
		}
		if err := emit(l); err != nil {
			return recon.StatementTotals{}, emitError{err}
		}
	}
	if err := sc.Err(); err != nil {
		return recon.StatementTotals{}, err
	}
	switch {
	case col == nil:
		return recon.StatementTotals{}, sc.Bad("no header row")
	case !trade.seen:
		return recon.StatementTotals{}, sc.Bad("no #交易合计 footer (truncated file?)")
	}
	if err := checkFooter("交易合计", trade, tradeSums); err != nil {
		return recon.StatementTotals{}, err
	}
	if refund.seen {
		if err := checkFooter("退款合计", refund, refundSums); err != nil {
			return recon.StatementTotals{}, err
		}
	} else if refundSums.count > 0 {
		return recon.StatementTotals{}, fmt.Errorf("%w: line %d: %d refund rows but no #退款合计 footer", channel.ErrBadStatement, trade.line, refundSums.count)
	}
	t := recon.StatementTotals{Present: true,
		PaymentsCount: trade.count, PaymentsAmount: trade.amount,
		RefundsCount: refund.count, RefundsAmount: -refund.amount,
		FeesAmount: tradeSums.fee + refundSums.fee}
	if trade.feeStated || refund.feeStated {
		t.FeesAmount = trade.fee + refund.fee
	}
	if t.RefundsAmount < 0 {
		t.RefundsAmount = -t.RefundsAmount
	}
	return t, nil
}

// normName normalises a header name: trimmed, parentheses in ASCII.
func normName(s string) string {
	s = strings.Trim(s, " \t\uFEFF")
	return strings.NewReplacer("（", "(", "）", ")").Replace(s)
}

// parseFooter reads the parts after a footer line's count.
func parseFooter(count, rest string) (footerTotal, error) {
	n, err := strconv.ParseInt(count, 10, 64)
	if err != nil {
		return footerTotal{}, fmt.Errorf("count %q: %v", channel.Truncate(count), err)
	}
	ft := footerTotal{seen: true, count: n}
	for i, part := range strings.FieldsFunc(rest, func(r rune) bool { return r == '，' || r == ',' }) {
		m := footerPart.FindStringSubmatch(strings.TrimSpace(part))
		if m == nil {
			continue
		}
		v, err := channel.ParseDecimal(m[2], 2)
		if err != nil {
			return footerTotal{}, err
		}
		switch {
		case i == 0:
			ft.amount, ft.receipt = v, strings.Contains(m[1], "实收")
		case strings.HasPrefix(m[1], "服务费"):
			ft.fee, ft.feeStated = v, true
		}
	}
	return ft, nil
}

// checkFooter compares a footer line with what its rows add up to.
func checkFooter(name string, ft footerTotal, s sums) error {
	if ft.count != s.count {
		return fmt.Errorf("%w: line %d: #%s says %d rows, the file has %d", channel.ErrBadStatement, ft.line, name, ft.count, s.count)
	}
	got, what := s.total, "订单金额"
	if ft.receipt {
		got, what = s.receipt, "商家实收"
	}
	if ft.amount != got {
		return fmt.Errorf("%w: line %d: #%s says %s %s yuan, the rows add up to %s", channel.ErrBadStatement, ft.line, name, what,
			channel.FormatDecimal(ft.amount, 2), channel.FormatDecimal(got, 2))
	}
	if ft.feeStated && ft.fee != s.fee {
		return fmt.Errorf("%w: line %d: #%s says 服务费 %s yuan, the rows add up to %s", channel.ErrBadStatement, ft.line, name,
			channel.FormatDecimal(ft.fee, 2), channel.FormatDecimal(s.fee, 2))
	}
	return nil
}

// parseRow reads one detail row: ok is false for a business type recon does
// not read.
func parseRow(col map[string]int, fields []string, lineNo int) (recon.StatementLine, sums, bool, error) {
	get := func(name string) string {
		i, ok := col[name]
		if !ok || i >= len(fields) {
			return ""
		}
		return strings.Trim(fields[i], " \t")
	}
	if len(fields) < len(col) {
		return recon.StatementLine{}, sums{}, false, fmt.Errorf("%d fields, the header has %d", len(fields), len(col))
	}
	l := recon.StatementLine{LineNo: lineNo, Currency: DefaultCurrency,
		ChannelTxnID: get(ColTradeNo), OrderNo: get(ColOutTradeNo)}
	switch get(ColBizType) {
	case BizTrade:
		l.Kind = recon.LinePayment
	case BizRefund:
		l.Kind = recon.LineRefund
	default:
		return l, sums{}, false, nil
	}
	amount := func(name string, required bool) (int64, error) {
		s := get(name)
		if s == "" && !required {
			return 0, nil
		}
		v, err := channel.ParseDecimal(s, 2)
		if err != nil {
			return 0, fmt.Errorf("%s: %v", name, err)
		}
		return v, nil
	}
	var s sums
	var err error
	if s.total, err = amount(ColTotal, true); err != nil {
		return l, s, false, err
	}
	if s.receipt, err = amount(ColReceipt, true); err != nil {
		return l, s, false, err
	}
	if s.fee, err = amount(ColServiceFee, false); err != nil {
		return l, s, false, err
	}
	l.Amount, l.Fee = s.total, s.fee
	if l.Kind == recon.LineRefund {
		l.Amount = -s.total
		l.RefundNo = get(ColRefundNo)
		if l.RefundNo == "" {
			l.RefundNo = get(ColRefundNoOld)
		}
		if l.RefundNo == "" {
			// A refund asked for without out_request_no is numbered with the
			// trade's out_trade_no.
			l.RefundNo = l.OrderNo
		}
	}
	if l.Amount < 0 {
		return l, s, false, fmt.Errorf("%s %s yuan has the wrong sign for %s", ColTotal, channel.FormatDecimal(s.total, 2), get(ColBizType))
	}
	when := get(ColFinished)
	if when == "" {
		when = get(ColCreated)
	}
	t, err := time.ParseInLocation(TimeLayout, when, Beijing)
	if err != nil {
		return l, s, false, fmt.Errorf("%s %q is not a time", ColFinished, channel.Truncate(when))
	}
	l.OccurredAt = t.UTC()
	return l, s, true, nil
}
