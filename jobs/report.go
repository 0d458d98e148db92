package jobs

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// Report is a mismatch report for finance: the rows of recon_mismatches a
// filter selected, and their totals. WriteCSV, WriteJSON and WriteHTML render
// it; the same Report always renders the same bytes.
type Report struct {
	// Title heads the HTML page.
	Title string
	// GeneratedAt is when the report was made (UTC).
	GeneratedAt time.Time
	// Filter describes the selection, for the reader ("kind=AMOUNT_MISMATCH").
	Filter string
	// Rows are the mismatches, in the order given.
	Rows []repo.MismatchRecord
	// MerchantNames maps merchant ids to display names; missing ids show
	// the id alone.
	MerchantNames map[string]string
	// Statements are the channel statements of the period, shown in a
	// section of their own when there are any.
	Statements []repo.Statement
}

// StatementRow is one statement as the reports show it: its counts, the
// findings of its last reconciliation and the file's own totals (empty when
// the format has none).
type StatementRow struct {
	Channel          string `json:"channel"`
	Day              string `json:"bill_date"`
	Status           string `json:"status"`
	Source           string `json:"source"`
	Lines            int64  `json:"lines"`
	Payments         int64  `json:"payments"`
	Refunds          int64  `json:"refunds"`
	Fees             int64  `json:"fees"`
	Matched          int64  `json:"matched"`
	Settled          int64  `json:"settled"`
	ChannelOnly      int64  `json:"channel_only"`
	LocalOnly        int64  `json:"local_only"`
	AmountMismatches int64  `json:"amount_mismatches"`
	RefundMismatches int64  `json:"refund_mismatches"`
	FeeMismatches    int64  `json:"fee_mismatches"`
	FilePayments     *int64 `json:"file_payments_count,omitempty"`
	FilePaymentsAmt  *int64 `json:"file_payments_amount,omitempty"`
	FileRefunds      *int64 `json:"file_refunds_count,omitempty"`
	FileRefundsAmt   *int64 `json:"file_refunds_amount,omitempty"`
	FileFees         *int64 `json:"file_fees_amount,omitempty"`
	SHA256           string `json:"file_sha256"`
	Error            string `json:"error,omitempty"`
}

func (r Report) statementRows() []StatementRow {
	out := make([]StatementRow, len(r.Statements))
	for i, st := range r.Statements {
		row := StatementRow{Channel: st.Channel, Day: st.Day, Status: st.Status, Source: st.Source, Lines: st.Lines,
			Payments: st.Payments, Refunds: st.Refunds, Fees: st.Fees, Matched: st.Matched, Settled: st.Settled,
			ChannelOnly: st.ChannelOnly, LocalOnly: st.LocalOnly, AmountMismatches: st.AmountMismatches,
			RefundMismatches: st.RefundMismatches, FeeMismatches: st.FeeMismatches, SHA256: st.SHA256, Error: st.Error}
		if t := st.Totals; t.Present {
			row.FilePayments, row.FilePaymentsAmt = &t.PaymentsCount, &t.PaymentsAmount
			row.FileRefunds, row.FileRefundsAmt, row.FileFees = &t.RefundsCount, &t.RefundsAmount, &t.FeesAmount
		}
		out[i] = row
	}
	return out
}

// StatementCSVHeader lists the columns of the CSV report's statements
// section.
var StatementCSVHeader = []string{
	"statement_channel", "bill_date", "status", "source", "lines", "payments", "refunds", "fees", "matched", "settled",
	"channel_only", "local_only", "amount_mismatches", "refund_mismatches", "fee_mismatches",
	"file_payments_count", "file_payments_amount", "file_refunds_count", "file_refunds_amount", "file_fees_amount",
	"file_sha256", "error",
}

func optInt(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

// Totals summarise a report.
type Totals struct {
	Count int `json:"count"`
	// ByKind has one line per kind and (local) currency: how many, and the
	// sum of |channel_amount - local_amount|.
	ByKind []KindTotal `json:"by_kind"`
	// ByChannel counts mismatches per channel and kind.
	ByChannel []ChannelTotal `json:"by_channel"`
	// AtStake sums |channel_amount - local_amount| per currency over every
	// kind, and the local amount of the orders concerned.
	AtStake []CurrencyTotal `json:"at_stake"`
	// PerDay counts mismatches by day of detection (UTC in reports),
	// gaps included.
	PerDay []DayCount `json:"per_day"`
}

// KindTotal is one kind and currency line of Totals.
type KindTotal struct {
	Kind               recon.MismatchKind `json:"kind"`
	Currency           string             `json:"currency"`
	Count              int                `json:"count"`
	AbsDifference      *big.Int           `json:"abs_difference"`
	AbsDifferenceMajor string             `json:"abs_difference_major"`
	LocalAmount        *big.Int           `json:"local_amount"`
	LocalAmountMajor   string             `json:"local_amount_major"`
}

// ChannelTotal is one channel line of Totals.
type ChannelTotal struct {
	Channel string                     `json:"channel"`
	Count   int                        `json:"count"`
	ByKind  map[recon.MismatchKind]int `json:"by_kind"`
}

// CurrencyTotal is the money at stake in one currency. Sums are exact big
// integers (JSON numbers): many large amounts, or one stored out of bounds,
// would wrap an int64.
type CurrencyTotal struct {
	Currency           string   `json:"currency"`
	Count              int      `json:"count"`
	AbsDifference      *big.Int `json:"abs_difference"`
	AbsDifferenceMajor string   `json:"abs_difference_major"`
	LocalAmount        *big.Int `json:"local_amount"`
	LocalAmountMajor   string   `json:"local_amount_major"`
}

// DayCount is the number of mismatches detected on one day (a UTC day in
// reports; a day in console.timezone in the console).
type DayCount struct {
	Day    string                     `json:"day"` // YYYY-MM-DD
	Count  int                        `json:"count"`
	ByKind map[recon.MismatchKind]int `json:"by_kind,omitempty"`
}

// maxChartDays bounds the per-day series: a wider window shows only the days
// that have mismatches.
const maxChartDays = 400

// MinorUnitExponent returns the ISO 4217 minor-unit exponent of a currency:
// the number of decimals between the integer minor units recon stores and
// the major unit people read (JPY 0, KWD 3, most others 2).
func MinorUnitExponent(currency string) int {
	switch strings.ToUpper(currency) {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	case "CLF", "UYW":
		return 4
	}
	return 2
}

// FormatMinor renders an amount in minor units as a decimal in the major
// unit of its currency: 12345 CNY is "123.45", 500 JPY "500", 1234 KWD
// "1.234". No grouping separators, so spreadsheets read it as a number.
func FormatMinor(amount int64, currency string) string {
	return formatMinorBig(big.NewInt(amount), currency)
}

// formatMinorBig is FormatMinor of an amount of any size.
func formatMinorBig(amount *big.Int, currency string) string {
	exp := MinorUnitExponent(currency)
	neg := amount.Sign() < 0
	digits := new(big.Int).Abs(amount).String()
	if exp > 0 {
		if len(digits) <= exp {
			digits = strings.Repeat("0", exp-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-exp] + "." + digits[len(digits)-exp:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// AbsDifference is the money a mismatch puts in dispute, in minor units of
// the order's (local) currency: the difference between what each side
// holds as paid.
//
//   - AMOUNT_MISMATCH: |channel_amount - local_amount|, the amount the
//     channel took that the order did not ask for (or the shortfall).
//   - CURRENCY_MISMATCH: the whole order amount: nothing was paid in the
//     order's currency, and amounts in two currencies are not subtracted.
//   - Every other kind: |paid at the channel - paid locally|, where a side
//     that is not PAID holds 0 (a channel payment in another currency counts
//     as the order amount). A local PAID the channel denies, or a channel
//     payment the order lacks, is the whole amount; an order unpaid on both
//     sides (STUCK_PENDING, NOT_FOUND_AT_CHANNEL) puts nothing in dispute.
//
// A difference beyond int64 (amounts stored out of bounds) reads as
// math.MaxInt64; the report's rows and totals use the exact value.
func AbsDifference(m recon.Mismatch) int64 {
	d := absDifference(m)
	if !d.IsInt64() {
		return math.MaxInt64
	}
	return d.Int64()
}

// absDifference is AbsDifference exactly.
func absDifference(m recon.Mismatch) *big.Int {
	return groupDifference(repo.MismatchGroup{Kind: m.Kind, LocalStatus: m.LocalStatus, ChannelStatus: m.ChannelStatus,
		LocalCurrency: m.LocalCurrency, ChannelCurrency: m.ChannelCurrency, Count: 1,
		LocalAmount: big.NewInt(m.LocalAmount), ChannelAmount: big.NewInt(m.ChannelAmount)})
}

// groupDifference is the sum of AbsDifference over a group's rows: the
// rows of a group are alike in the signs that matter, so it is the
// difference of the group's sums.
func groupDifference(g repo.MismatchGroup) *big.Int {
	switch {
	case g.Kind == recon.MismatchAmount,
		g.Kind == recon.MismatchRefundAmount && (g.ChannelCurrency == "" || g.ChannelCurrency == g.LocalCurrency):
		return absSub(g.ChannelAmount, g.LocalAmount)
	case g.Kind == recon.MismatchCurrency, g.Kind == recon.MismatchRefundAmount:
		return new(big.Int).Set(g.LocalAmount)
	}
	// Money moved on a side: a payment PAID, or a refund SUCCEEDED (a
	// refund's rows carry its statuses).
	local, channel := new(big.Int), new(big.Int)
	if g.LocalStatus == recon.StatusPaid || g.LocalStatus == recon.Status(recon.RefundSucceeded) {
		local = g.LocalAmount
	}
	if g.ChannelStatus == recon.ChannelPaid || g.ChannelStatus == recon.ChannelStatus(recon.RefundChannelSucceeded) {
		channel = g.ChannelAmount
		if g.ChannelCurrency != "" && g.ChannelCurrency != g.LocalCurrency {
			channel = g.LocalAmount
		}
	}
	return absSub(channel, local)
}

// absSub is |a - b|.
func absSub(a, b *big.Int) *big.Int {
	d := new(big.Int).Sub(a, b)
	return d.Abs(d)
}

// Totals computes the report's totals, its days UTC days.
func (r Report) Totals() Totals { return RowTotals(r.Rows, time.UTC) }

// RowTotals is TotalsOf rows, a group each, counted by days in zone.
func RowTotals(rows []repo.MismatchRecord, zone *time.Location) Totals {
	groups := make([]repo.MismatchGroup, len(rows))
	for i, m := range rows {
		groups[i] = repo.MismatchGroup{Kind: m.Kind, LocalStatus: m.LocalStatus, ChannelStatus: m.ChannelStatus,
			LocalCurrency: m.LocalCurrency, ChannelCurrency: m.ChannelCurrency, Channel: m.Channel,
			Day: m.DetectedAt.In(zone).Format(time.DateOnly), Count: 1,
			LocalAmount: big.NewInt(m.LocalAmount), ChannelAmount: big.NewInt(m.ChannelAmount)}
	}
	return TotalsOf(groups)
}

// TotalsOf sums groups of mismatches (repo.Store.MismatchGroups, or one
// row each) into Totals. Every list is sorted (kinds in
// recon.MismatchKinds order), so output is stable.
func TotalsOf(groups []repo.MismatchGroup) Totals {
	var t Totals
	type kc struct {
		kind recon.MismatchKind
		cur  string
	}
	byKind := map[kc]*KindTotal{}
	byChannel := map[string]*ChannelTotal{}
	byCur := map[string]*CurrencyTotal{}
	byDay := map[string]*DayCount{}
	var first, last time.Time
	for _, g := range groups {
		t.Count += g.Count
		cur := g.LocalCurrency
		diff := groupDifference(g)
		k := byKind[kc{g.Kind, cur}]
		if k == nil {
			k = &KindTotal{Kind: g.Kind, Currency: cur, AbsDifference: new(big.Int), LocalAmount: new(big.Int)}
			byKind[kc{g.Kind, cur}] = k
		}
		k.Count += g.Count
		k.AbsDifference.Add(k.AbsDifference, diff)
		k.LocalAmount.Add(k.LocalAmount, g.LocalAmount)
		c := byChannel[g.Channel]
		if c == nil {
			c = &ChannelTotal{Channel: g.Channel, ByKind: map[recon.MismatchKind]int{}}
			byChannel[g.Channel] = c
		}
		c.Count += g.Count
		c.ByKind[g.Kind] += g.Count
		s := byCur[cur]
		if s == nil {
			s = &CurrencyTotal{Currency: cur, AbsDifference: new(big.Int), LocalAmount: new(big.Int)}
			byCur[cur] = s
		}
		s.Count += g.Count
		s.AbsDifference.Add(s.AbsDifference, diff)
		s.LocalAmount.Add(s.LocalAmount, g.LocalAmount)
		day, err := time.Parse(time.DateOnly, g.Day)
		if err != nil {
			continue // a detection time the database could not read as a day
		}
		d := byDay[g.Day]
		if d == nil {
			d = &DayCount{Day: g.Day, ByKind: map[recon.MismatchKind]int{}}
			byDay[g.Day] = d
		}
		d.Count += g.Count
		d.ByKind[g.Kind] += g.Count
		if first.IsZero() || day.Before(first) {
			first = day
		}
		if day.After(last) {
			last = day
		}
	}
	for _, k := range byKind {
		k.AbsDifferenceMajor = formatMinorBig(k.AbsDifference, k.Currency)
		k.LocalAmountMajor = formatMinorBig(k.LocalAmount, k.Currency)
		t.ByKind = append(t.ByKind, *k)
	}
	sort.Slice(t.ByKind, func(i, j int) bool {
		a, b := t.ByKind[i], t.ByKind[j]
		if a.Kind != b.Kind {
			return kindIndex(a.Kind) < kindIndex(b.Kind)
		}
		return a.Currency < b.Currency
	})
	for _, c := range byChannel {
		t.ByChannel = append(t.ByChannel, *c)
	}
	sort.Slice(t.ByChannel, func(i, j int) bool { return t.ByChannel[i].Channel < t.ByChannel[j].Channel })
	for _, s := range byCur {
		s.AbsDifferenceMajor = formatMinorBig(s.AbsDifference, s.Currency)
		s.LocalAmountMajor = formatMinorBig(s.LocalAmount, s.Currency)
		t.AtStake = append(t.AtStake, *s)
	}
	sort.Slice(t.AtStake, func(i, j int) bool { return t.AtStake[i].Currency < t.AtStake[j].Currency })
	if !first.IsZero() && last.Sub(first) <= maxChartDays*24*time.Hour {
		for d := first; !d.After(last); d = d.Add(24 * time.Hour) {
			key := d.Format(time.DateOnly)
			if dc := byDay[key]; dc != nil {
				t.PerDay = append(t.PerDay, *dc)
			} else {
				t.PerDay = append(t.PerDay, DayCount{Day: key})
			}
		}
	} else {
		for _, dc := range byDay {
			t.PerDay = append(t.PerDay, *dc)
		}
		sort.Slice(t.PerDay, func(i, j int) bool { return t.PerDay[i].Day < t.PerDay[j].Day })
	}
	return t
}

func kindIndex(k recon.MismatchKind) int {
	for i, v := range recon.MismatchKinds {
		if v == k {
			return i
		}
	}
	return len(recon.MismatchKinds)
}

// reportRow is one mismatch as the CSV and JSON reports show it: the columns
// of recon_mismatches (CONTRACT §3) plus the merchant's name and the amounts
// as decimals in the major unit.
type reportRow struct {
	ID                 int64               `json:"id"`
	RunID              int64               `json:"run_id,omitempty"`
	OrderID            int64               `json:"order_id"`
	OrderNo            string              `json:"order_no"`
	MerchantID         string              `json:"merchant_id"`
	MerchantName       string              `json:"merchant_name,omitempty"`
	Channel            string              `json:"channel"`
	Kind               recon.MismatchKind  `json:"kind"`
	LocalStatus        recon.Status        `json:"local_status"`
	ChannelStatus      recon.ChannelStatus `json:"channel_status"`
	LocalAmount        int64               `json:"local_amount"`
	ChannelAmount      int64               `json:"channel_amount"`
	LocalCurrency      string              `json:"local_currency"`
	ChannelCurrency    string              `json:"channel_currency"`
	ChannelTxnID       string              `json:"channel_txn_id"`
	RefundNo           string              `json:"refund_no"` // refund kinds
	Detail             string              `json:"detail"`
	DetectedAt         time.Time           `json:"detected_at"`
	LastSeenAt         time.Time           `json:"last_seen_at"`
	Occurrences        int                 `json:"occurrences"`
	Resolution         recon.Resolution    `json:"resolution"`
	ResolvedBy         string              `json:"resolved_by,omitempty"`
	ResolutionNote     string              `json:"resolution_note,omitempty"`
	ResolvedAt         *time.Time          `json:"resolved_at,omitempty"`
	LocalAmountMajor   string              `json:"local_amount_major"`
	ChannelAmountMajor string              `json:"channel_amount_major"`
	AbsDifference      *big.Int            `json:"abs_difference"`
	AbsDifferenceMajor string              `json:"abs_difference_major"`
}

func (r Report) rows() []reportRow {
	out := make([]reportRow, len(r.Rows))
	for i, m := range r.Rows {
		out[i] = toReportRow(m, r.MerchantNames[m.MerchantID])
	}
	return out
}

// toReportRow is one mismatch as the reports show it, with its merchant's
// name.
func toReportRow(m repo.MismatchRecord, merchantName string) reportRow {
	chCur := m.ChannelCurrency
	if chCur == "" {
		chCur = m.LocalCurrency
	}
	row := reportRow{
		ID: m.ID, RunID: m.RunID, OrderID: m.OrderID, OrderNo: m.OrderNo, MerchantID: m.MerchantID,
		MerchantName: merchantName, Channel: m.Channel, Kind: m.Kind,
		LocalStatus: m.LocalStatus, ChannelStatus: m.ChannelStatus, LocalAmount: m.LocalAmount,
		ChannelAmount: m.ChannelAmount, LocalCurrency: m.LocalCurrency, ChannelCurrency: m.ChannelCurrency,
		ChannelTxnID: m.ChannelTxnID, RefundNo: m.RefundNo, Detail: m.Detail, DetectedAt: m.DetectedAt.UTC(),
		LastSeenAt: m.LastSeenAt.UTC(), Occurrences: m.Occurrences, Resolution: m.Resolution,
		ResolvedBy: m.ResolvedBy, ResolutionNote: m.ResolutionNote, ResolvedAt: m.ResolvedAt,
		LocalAmountMajor:   FormatMinor(m.LocalAmount, m.LocalCurrency),
		ChannelAmountMajor: FormatMinor(m.ChannelAmount, chCur),
		AbsDifference:      absDifference(m.Mismatch),
		AbsDifferenceMajor: formatMinorBig(absDifference(m.Mismatch), m.LocalCurrency),
	}
	if row.ResolvedAt != nil {
		t := row.ResolvedAt.UTC()
		row.ResolvedAt = &t
	}
	return row
}

// CSVHeader lists the CSV report's columns: those of recon_mismatches
// (CONTRACT §3), then merchant_name, occurrences and the decimal amounts,
// then refund_no (last, so that readers of the earlier columns by position
// are not moved).
var CSVHeader = []string{
	"id", "run_id", "order_id", "order_no", "merchant_id", "channel", "kind", "local_status", "channel_status",
	"local_amount", "channel_amount", "local_currency", "channel_currency", "channel_txn_id", "detail",
	"detected_at", "last_seen_at", "resolution", "resolved_by", "resolution_note", "resolved_at",
	"merchant_name", "occurrences", "local_amount_major", "channel_amount_major", "abs_difference",
	"abs_difference_major", "refund_no",
}

// utf8BOM starts the CSV report. Excel reads a CSV file without it in the
// legacy code page of the machine, which garbles Chinese merchant names; with
// it, Excel (and LibreOffice, Numbers, pandas with encoding="utf-8-sig") read
// UTF-8. Tools that do not expect it see "\ufeff" before the first header.
const utf8BOM = "\ufeff"

// WriteCSV writes one CSV row per mismatch (see CSVWriter), then the
// statements of the period, if any, after a blank line.
func (r Report) WriteCSV(w io.Writer) error {
	cw, err := NewCSVWriter(w)
	if err != nil {
		return err
	}
	for _, m := range r.Rows {
		if err := cw.Write(m, r.MerchantNames[m.MerchantID]); err != nil {
			return err
		}
	}
	if err := cw.Flush(); err != nil {
		return err
	}
	if len(r.Statements) == 0 {
		return nil
	}
	// The statements follow the mismatches after a blank line, as a table
	// of their own.
	if _, err := io.WriteString(w, "\r\n"); err != nil {
		return fmt.Errorf("write csv report: %w", err)
	}
	if err := cw.cw.Write(StatementCSVHeader); err != nil {
		return fmt.Errorf("write csv report: %w", err)
	}
	for _, st := range r.statementRows() {
		var rec csvRecord
		rec.text(st.Channel, st.Day, st.Status, st.Source)
		rec.ints(st.Lines, st.Payments, st.Refunds, st.Fees, st.Matched, st.Settled, st.ChannelOnly, st.LocalOnly,
			st.AmountMismatches, st.RefundMismatches, st.FeeMismatches)
		rec.optInts(st.FilePayments, st.FilePaymentsAmt, st.FileRefunds, st.FileRefundsAmt, st.FileFees)
		rec.text(st.SHA256, st.Error)
		if err := cw.cw.Write(rec); err != nil {
			return fmt.Errorf("write csv report: %w", err)
		}
	}
	return cw.Flush()
}

// CSVWriter writes the CSV report one mismatch at a time, so an export of
// any size holds one row: a UTF-8 byte order mark (so Excel shows
// non-ASCII names correctly, see utf8BOM), the CSVHeader, then a row per
// Write. Times are RFC 3339 UTC; amounts appear both in integer minor units
// and as decimals in the major unit. Every text cell goes through the
// formula guard (see csvRecord).
type CSVWriter struct {
	cw *csv.Writer
}

// NewCSVWriter writes the byte order mark and the header to w.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	if _, err := io.WriteString(w, utf8BOM); err != nil {
		return nil, fmt.Errorf("write csv report: %w", err)
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // what Excel writes and expects
	if err := cw.Write(CSVHeader); err != nil {
		return nil, fmt.Errorf("write csv report: %w", err)
	}
	return &CSVWriter{cw: cw}, nil
}

// Write writes m's row, with its merchant's name.
func (c *CSVWriter) Write(m repo.MismatchRecord, merchantName string) error {
	row := toReportRow(m, merchantName)
	var rec csvRecord
	rec.ints(row.ID)
	rec.optInts(optID(row.RunID))
	rec.ints(row.OrderID)
	rec.text(row.OrderNo, row.MerchantID, row.Channel, string(row.Kind), string(row.LocalStatus), string(row.ChannelStatus))
	rec.ints(row.LocalAmount, row.ChannelAmount)
	rec.text(row.LocalCurrency, row.ChannelCurrency, row.ChannelTxnID, row.Detail)
	rec.times(&row.DetectedAt, &row.LastSeenAt)
	rec.text(string(row.Resolution), row.ResolvedBy, row.ResolutionNote)
	rec.times(row.ResolvedAt)
	rec.text(row.MerchantName)
	rec.ints(int64(row.Occurrences))
	rec.decimals(row.LocalAmountMajor, row.ChannelAmountMajor, row.AbsDifference.String(), row.AbsDifferenceMajor)
	rec.text(row.RefundNo)
	if err := c.cw.Write(rec); err != nil {
		return fmt.Errorf("write csv report: %w", err)
	}
	return nil
}

// Flush writes what is buffered to the underlying writer.
func (c *CSVWriter) Flush() error {
	c.cw.Flush()
	if err := c.cw.Error(); err != nil {
		return fmt.Errorf("write csv report: %w", err)
	}
	return nil
}

// optID is a row id, nil when there is none (0).
func optID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// csvRecord is one CSV record, built only through its typed appenders: a
// string is text and goes through cell, whatever the column; numbers,
// decimals and times are formatted here or by FormatMinor, never taken
// from the data as text.
type csvRecord []string

// text appends text cells, each through the formula guard.
func (r *csvRecord) text(v ...string) {
	for _, s := range v {
		*r = append(*r, cell(s))
	}
}

func (r *csvRecord) ints(v ...int64) {
	for _, n := range v {
		*r = append(*r, strconv.FormatInt(n, 10))
	}
}

// optInts appends numbers that may be absent (an empty cell).
func (r *csvRecord) optInts(v ...*int64) {
	for _, p := range v {
		*r = append(*r, optInt(p))
	}
}

// decimals appends amounts recon formatted itself (FormatMinor, big.Int):
// a leading minus is a sign, not a formula.
func (r *csvRecord) decimals(v ...string) {
	*r = append(*r, v...)
}

// times appends RFC 3339 UTC times; nil is an empty cell.
func (r *csvRecord) times(v ...*time.Time) {
	for _, t := range v {
		if t == nil {
			*r = append(*r, "")
			continue
		}
		*r = append(*r, t.UTC().Format(time.RFC3339))
	}
}

// cell defuses text a spreadsheet would evaluate as a formula (CSV
// injection): channel data and notes are not ours to trust.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// jsonReport is the JSON report document.
type jsonReport struct {
	GeneratedAt time.Time      `json:"generated_at"`
	Filter      string         `json:"filter,omitempty"`
	Rows        []reportRow    `json:"rows"`
	Totals      Totals         `json:"totals"`
	Statements  []StatementRow `json:"statements,omitempty"`
}

// WriteJSON writes the rows and totals as one indented JSON object with the
// keys generated_at, filter, rows and totals.
func (r Report) WriteJSON(w io.Writer) error {
	doc := jsonReport{GeneratedAt: r.GeneratedAt.UTC(), Filter: r.Filter, Rows: r.rows(), Totals: r.Totals(),
		Statements: r.statementRows()}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}
