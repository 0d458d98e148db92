package jobs

import (
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/recon-dev/recon"
)

// kindColors colour the chart's stacks, one per kind in MismatchKinds order;
// chosen to stay distinct when printed in grey.
var kindColors = []string{"#c0392b", "#e67e22", "#8e44ad", "#2471a3", "#17a589", "#7f8c8d", "#34495e",
	"#b7950b", "#1e8449", "#d35400", "#5d6d7e", "#922b21", "#6c3483", "#1a5276", "#0e6655",
	"#9a7d0a", "#873600"}

func kindColor(k recon.MismatchKind) string {
	return kindColors[kindIndex(k)%len(kindColors)]
}

type svgRect struct {
	X, Y, W, H float64
	Fill, Tip  string
}

type svgLabel struct {
	X, Y   float64
	Text   string
	Anchor string
}

type chart struct {
	Width, Height float64
	Bars          []svgRect
	Labels        []svgLabel
	Axis          float64
	Legend        []legendItem
}

type legendItem struct {
	Kind  recon.MismatchKind
	Color string
}

// buildChart lays the per-day counts out as stacked bars (one colour per
// kind) in a fixed-size SVG, so the page needs no script.
func buildChart(days []DayCount) chart {
	const w, h, top, bottom, left = 860.0, 220.0, 18.0, 30.0, 8.0
	c := chart{Width: w, Height: h, Axis: h - bottom}
	if len(days) == 0 {
		return c
	}
	maxN := 1
	for _, d := range days {
		maxN = max(maxN, d.Count)
	}
	slot := (w - 2*left) / float64(len(days))
	barW := min(slot*0.8, 48)
	plotH := h - top - bottom
	labelEvery := max(1, len(days)/12)
	seen := map[recon.MismatchKind]bool{}
	for i, d := range days {
		x := left + float64(i)*slot + (slot-barW)/2
		y := c.Axis
		for _, k := range recon.MismatchKinds {
			n := d.ByKind[k]
			if n == 0 {
				continue
			}
			seen[k] = true
			bh := plotH * float64(n) / float64(maxN)
			y -= bh
			c.Bars = append(c.Bars, svgRect{X: x, Y: y, W: barW, H: bh, Fill: kindColor(k),
				Tip: fmt.Sprintf("%s: %d %s", d.Day, n, k)})
		}
		if d.Count > 0 {
			c.Labels = append(c.Labels, svgLabel{X: x + barW/2, Y: y - 4, Text: fmt.Sprint(d.Count), Anchor: "middle"})
		}
		if i%labelEvery == 0 {
			c.Labels = append(c.Labels, svgLabel{X: x + barW/2, Y: h - bottom + 16, Text: d.Day[5:], Anchor: "middle"})
		}
	}
	for _, k := range recon.MismatchKinds {
		if seen[k] {
			c.Legend = append(c.Legend, legendItem{Kind: k, Color: kindColor(k)})
		}
	}
	return c
}

type htmlData struct {
	Title       string
	GeneratedAt string
	Filter      string
	Totals      Totals
	Kinds       []recon.MismatchKind
	Chart       chart
	Rows        []reportRow
	Statements  []StatementRow
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"f1":    func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"color": kindColor,
	"time": func(t time.Time) string {
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"timep": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"kindOf": func(m map[recon.MismatchKind]int, k recon.MismatchKind) int { return m[k] },
	"deref":  func(p *int64) int64 { return *p },
	"add":    func(a, b int) int { return a + b },
}).Parse(htmlSource))

// kindsIn are the kinds t counts, in recon.MismatchKinds order: the
// columns of the table by channel (all of them, a column each, would not
// fit a page).
func kindsIn(t Totals) []recon.MismatchKind {
	var out []recon.MismatchKind
	for _, k := range recon.MismatchKinds {
		for _, c := range t.ByChannel {
			if c.ByKind[k] > 0 {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// WriteHTML writes the report as one self-contained page: inline CSS, an
// inline SVG chart of mismatches per day, totals by kind and channel, the
// amounts at stake per currency and the table. It loads nothing from the
// network and has a print stylesheet.
func (r Report) WriteHTML(w io.Writer) error {
	title := r.Title
	if title == "" {
		title = "recon mismatch report"
	}
	t := r.Totals()
	d := htmlData{Title: title, GeneratedAt: r.GeneratedAt.UTC().Format(time.RFC3339), Filter: r.Filter,
		Totals: t, Kinds: kindsIn(t), Chart: buildChart(t.PerDay), Rows: r.rows(), Statements: r.statementRows()}
	if err := htmlTemplate.Execute(w, d); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}

const htmlSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { --fg: #1c2833; --muted: #5d6d7e; --line: #d5d8dc; --head: #f4f6f7; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", "PingFang SC", "Microsoft YaHei", sans-serif;
       color: var(--fg); margin: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.meta { color: var(--muted); margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.card .n { font-size: 22px; font-weight: 600; }
.card .l { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 16px; }
.rows td { font-size: 12px; }
.k { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: middle; }
.res-OPEN { color: #c0392b; font-weight: 600; }
.res-ACKNOWLEDGED { color: #b9770e; }
.res-RESOLVED { color: #1e8449; }
svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
.legend span { margin-right: 14px; font-size: 12px; }
.empty { color: var(--muted); font-style: italic; }
.wide { overflow-x: auto; }
@media print {
  body { margin: 0; font-size: 10px; }
  .wide { overflow: visible; }
  h2 { break-after: avoid; }
  table { page-break-inside: auto; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  .card { border-color: #999; }
  .rows td { font-size: 9px; }
  @page { size: A4 landscape; margin: 12mm; }
}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">Generated {{.GeneratedAt}}{{if .Filter}} &middot; {{.Filter}}{{end}} &middot; amounts in major units of each currency; in dispute: the difference between what the channel holds as paid and what we hold as paid (for an amount mismatch: |channel &minus; local|).</p>

<div class="cards">
<div class="card"><div class="n" id="total-count">{{.Totals.Count}}</div><div class="l">mismatches</div></div>
{{range .Totals.AtStake}}<div class="card"><div class="n">{{.AbsDifferenceMajor}} {{.Currency}}</div><div class="l">at stake in {{.Currency}} ({{.Count}} mismatches, orders {{.LocalAmountMajor}})</div></div>
{{end}}</div>

<h2>Mismatches per day (UTC)</h2>
{{if .Chart.Bars}}<svg id="chart" role="img" aria-label="mismatches per day" width="100%" viewBox="0 0 {{f1 .Chart.Width}} {{f1 .Chart.Height}}">
<line x1="0" y1="{{f1 .Chart.Axis}}" x2="{{f1 .Chart.Width}}" y2="{{f1 .Chart.Axis}}" stroke="#999"/>
{{range .Chart.Bars}}<rect x="{{f1 .X}}" y="{{f1 .Y}}" width="{{f1 .W}}" height="{{f1 .H}}" fill="{{.Fill}}"><title>{{.Tip}}</title></rect>
{{end}}{{range .Chart.Labels}}<text x="{{f1 .X}}" y="{{f1 .Y}}" text-anchor="{{.Anchor}}">{{.Text}}</text>
{{end}}</svg>
<div class="legend">{{range .Chart.Legend}}<span><i class="k" style="background:{{.Color}}"></i>{{.Kind}}</span>{{end}}</div>
{{else}}<p class="empty">No mismatches in this selection.</p>{{end}}

<div class="grid">
<section>
<h2>Totals by kind and currency</h2>
<table id="by-kind"><thead><tr><th>Kind</th><th>Currency</th><th class="num">Count</th><th class="num">In dispute</th><th class="num">Order amounts</th></tr></thead>
<tbody>{{range .Totals.ByKind}}<tr><td><i class="k" style="background:{{color .Kind}}"></i>{{.Kind}}</td><td>{{.Currency}}</td><td class="num">{{.Count}}</td><td class="num">{{.AbsDifferenceMajor}}</td><td class="num">{{.LocalAmountMajor}}</td></tr>
{{else}}<tr><td colspan="5" class="empty">none</td></tr>{{end}}</tbody></table>
</section>
<section>
<h2>Amounts at stake per currency</h2>
<table id="at-stake"><thead><tr><th>Currency</th><th class="num">Mismatches</th><th class="num">In dispute</th><th class="num">Order amounts</th></tr></thead>
<tbody>{{range .Totals.AtStake}}<tr><td>{{.Currency}}</td><td class="num">{{.Count}}</td><td class="num">{{.AbsDifferenceMajor}}</td><td class="num">{{.LocalAmountMajor}}</td></tr>
{{else}}<tr><td colspan="4" class="empty">none</td></tr>{{end}}</tbody></table>
</section>
</div>

<h2>Totals by channel</h2>
<div class="wide"><table id="by-channel"><thead><tr><th>Channel</th><th class="num">Total</th>{{range .Kinds}}<th class="num">{{.}}</th>{{end}}</tr></thead>
<tbody>{{range $c := .Totals.ByChannel}}<tr><td>{{$c.Channel}}</td><td class="num">{{$c.Count}}</td>{{range $.Kinds}}<td class="num">{{kindOf $c.ByKind .}}</td>{{end}}</tr>
{{else}}<tr><td colspan="{{len .Kinds | add 2}}" class="empty">none</td></tr>{{end}}</tbody></table></div>

<h2>Mismatches</h2>
<div class="wide"><table id="mismatches" class="rows"><thead><tr><th class="num">ID</th><th>Detected (UTC)</th><th>Order</th><th>Merchant</th><th>Channel</th><th>Kind</th><th>Local</th><th>Channel</th><th class="num">Local amount</th><th class="num">Channel amount</th><th class="num">In dispute</th><th>Txn</th><th>Detail</th><th>Resolution</th></tr></thead>
<tbody>{{range .Rows}}<tr><td class="num">{{.ID}}</td><td>{{time .DetectedAt}}{{if gt .Occurrences 1}}<br><small>seen {{.Occurrences}}&times;, last {{time .LastSeenAt}}</small>{{end}}</td><td>{{.OrderNo}}{{if .RefundNo}}<br><small>refund {{.RefundNo}}</small>{{end}}</td><td>{{.MerchantID}}{{if .MerchantName}}<br><small>{{.MerchantName}}</small>{{end}}</td><td>{{.Channel}}</td><td><i class="k" style="background:{{color .Kind}}"></i>{{.Kind}}</td><td>{{.LocalStatus}}</td><td>{{.ChannelStatus}}</td><td class="num">{{.LocalAmountMajor}} {{.LocalCurrency}}</td><td class="num">{{.ChannelAmountMajor}} {{.ChannelCurrency}}</td><td class="num">{{.AbsDifferenceMajor}}</td><td>{{.ChannelTxnID}}</td><td>{{.Detail}}</td><td><span class="res-{{.Resolution}}">{{.Resolution}}</span>{{if .ResolvedBy}}<br><small>{{.ResolvedBy}} {{timep .ResolvedAt}}{{if .ResolutionNote}}: {{.ResolutionNote}}{{end}}</small>{{end}}</td></tr>
{{else}}<tr><td colspan="14" class="empty">No mismatches in this selection.</td></tr>{{end}}</tbody></table></div>
{{if .Statements}}
<h2>Channel statements</h2>
<div class="wide"><table id="statements" class="rows"><thead><tr><th>Day</th><th>Channel</th><th>Status</th><th class="num">Lines</th><th class="num">Matched</th><th class="num">Settled</th><th class="num">Channel only</th><th class="num">Local only</th><th class="num">Amount</th><th class="num">Refunds (mismatched)</th><th class="num">Fees (mismatched)</th><th>File's own totals</th></tr></thead>
<tbody>{{range .Statements}}<tr><td>{{.Day}}</td><td>{{.Channel}}</td><td>{{.Status}}{{if .Error}}<br><small>{{.Error}}</small>{{end}}</td><td class="num">{{.Lines}}</td><td class="num">{{.Matched}}</td><td class="num">{{.Settled}}</td><td class="num">{{.ChannelOnly}}</td><td class="num">{{.LocalOnly}}</td><td class="num">{{.AmountMismatches}}</td><td class="num">{{.Refunds}} ({{.RefundMismatches}})</td><td class="num">{{.Fees}} ({{.FeeMismatches}})</td><td>{{if .FilePayments}}payments {{deref .FilePayments}} / {{deref .FilePaymentsAmt}}, refunds {{deref .FileRefunds}} / {{deref .FileRefundsAmt}}, fees {{deref .FileFees}}{{else}}<span class="empty">none in this format</span>{{end}}</td></tr>
{{end}}</tbody></table></div>
<p class="meta">Amounts of statements are in minor units, as the channel writes them.</p>
{{end}}
</body>
</html>
`
