package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

// page is what every template gets.
type page struct {
	Title string
	Nav   string
	User  *User
	CSRF  string
	Zone  string
	Flash string
	Error string
	Data  any
}

func (s *Server) zone() string {
	loc := s.opt.Location
	_, off := s.opt.Clock.Now().In(loc).Zone()
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	return fmt.Sprintf("%s (UTC%s%02d:%02d)", loc, sign, off/3600, off%3600/60)
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, req *request, status int, name, title string, data any) {
	p := page{Title: title, Nav: name, Zone: s.zone(), Data: data}
	if req != nil {
		p.User, p.CSRF = &req.User, req.CSRF
	}
	if f, ok := flashes[r.URL.Query().Get("done")]; ok && status < 300 {
		p.Flash = f
	}
	var buf bytes.Buffer
	if err := s.pages[name].Execute(&buf, p); err != nil {
		s.log.Error("console template failed", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// flashes are the messages a redirect after a write may ask for (?done=);
// only these, so a link cannot put words on the page.
var flashes = map[string]string{
	"ack":     "Acknowledged.",
	"resolve": "Resolved.",
	"accept":  "The order now has the channel's state, and the mismatch is resolved.",
	"close":   "The order is closed, and the mismatch is resolved.",
}

func (s *Server) funcs() template.FuncMap {
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(s.opt.Location).Format("2006-01-02 15:04:05")
	}
	return template.FuncMap{
		"when": when,
		"whenp": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return when(*t)
		},
		"utc":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"money": func(v int64, cur string) string { return jobs.FormatMinor(v, cur) + " " + cur },
		// minor shows an amount whose currency is not recorded (a
		// statement's totals) as a decimal with two places.
		"minor": func(v int64) string { return jobs.FormatMinor(v, "") },
		"dispute": func(m repo.MismatchRecord) string {
			return jobs.FormatMinor(jobs.AbsDifference(m.Mismatch), m.LocalCurrency) + " " + m.LocalCurrency
		},
		"f1": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
		// took is how long a run took; a run still going shows as running.
		"took": func(start time.Time, end *time.Time) string {
			if end == nil {
				return "running"
			}
			return end.Sub(start).Round(time.Second).String()
		},
		"outcome": jobs.DescribeOutcome,
		"lower":   strings.ToLower,
		"list":    func(v ...string) []string { return v },
		"add": func(v ...int) int {
			n := 0
			for _, x := range v {
				n += x
			}
			return n
		},
	}
}

// listData is the mismatch list page.
type listData struct {
	Query      jobs.ReportQuery
	Kinds      []recon.MismatchKind
	Channels   []string
	Filter     string
	Totals     jobs.Totals
	Chart      jobs.Chart
	Days       string // the zone whose days the chart counts (console.timezone)
	Rows       []repo.MismatchRecord
	Names      map[string]string
	Page, Last int
	First      int // 1-based number of the first row shown
	Prev, Next string
	CSV        string
}

// query reads the list's parameters. Without resolution the list shows the
// unresolved mismatches; resolution=ALL shows every one.
func query(r *http.Request) (jobs.ReportQuery, jobs.ReportQuery) {
	v := r.URL.Query()
	shown := jobs.ReportQuery{From: v.Get("from"), To: v.Get("to"), Kind: v.Get("kind"), Channel: v.Get("channel"),
		Merchant: strings.TrimSpace(v.Get("merchant")), Resolution: strings.ToUpper(v.Get("resolution")),
		Refund: strings.TrimSpace(v.Get("refund"))}
	q := shown
	switch q.Resolution {
	case "":
		q.Resolution = jobs.ResolutionUnresolved
	case "ALL":
		q.Resolution = ""
	}
	return shown, q
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, req *request) {
	shown, q := query(r)
	d := listData{Query: shown, Kinds: recon.MismatchKinds, Channels: s.opt.Channels, Days: s.opt.Location.String()}
	mf, desc, err := q.Filter(s.opt.Location, nil)
	var qe *jobs.QueryError
	if errors.As(err, &qe) {
		s.render(w, r, req, http.StatusBadRequest, "list", "Mismatches", struct {
			listData
			Invalid string
		}{d, qe.Error()})
		return
	}
	ctx := r.Context()
	// The totals are summed by the database in groups, and only the page
	// shown is read: a request holds a page and the groups, however many
	// mismatches the selection has. The two are read at once, on two
	// connections: a page costs the slower of them, not their sum.
	n := s.opt.PageSize
	d.Page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	d.Page = max(d.Page, 1)
	mf.Limit, mf.Offset = n, (d.Page-1)*n
	listed := make(chan error, 1)
	go func(f repo.MismatchFilter) {
		var err error
		d.Rows, err = s.opt.Store.ListMismatches(ctx, f)
		listed <- err
	}(mf)
	groups, err := s.opt.Store.MismatchGroups(ctx, mf) // the whole selection: Limit and Offset aside
	if lerr := <-listed; err == nil {
		err = lerr
	}
	if err != nil {
		s.internal(w, r, req, err)
		return
	}
	d.Filter, d.Totals = desc, jobs.TotalsOf(groups)
	d.Chart = jobs.DayChart(d.Totals.PerDay)
	d.Channels = channelsOf(s.opt.Channels, d.Totals.ByChannel)
	d.Last = max(1, (d.Totals.Count+n-1)/n)
	if d.Page > d.Last {
		// Past the end (a link from before rows were resolved): the last
		// page is shown instead.
		d.Page = d.Last
		mf.Offset = (d.Page - 1) * n
		if d.Rows, err = s.opt.Store.ListMismatches(ctx, mf); err != nil {
			s.internal(w, r, req, err)
			return
		}
	}
	var ids []string
	for _, m := range d.Rows {
		ids = append(ids, m.MerchantID)
	}
	if d.Names, err = s.opt.Store.MerchantNames(ctx, ids); err != nil {
		s.internal(w, r, req, err)
		return
	}
	d.First = mf.Offset + 1
	link := func(p int) string {
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(p))
		return "/mismatches?" + v.Encode()
	}
	if d.Page > 1 {
		d.Prev = link(d.Page - 1)
	}
	if d.Page < d.Last {
		d.Next = link(d.Page + 1)
	}
	v := r.URL.Query()
	v.Del("page")
	d.CSV = "/mismatches.csv"
	if len(v) > 0 {
		d.CSV += "?" + v.Encode()
	}
	s.render(w, r, req, http.StatusOK, "list", "Mismatches", struct {
		listData
		Invalid string
	}{d, ""})
}

// channelsOf lists the configured channels and any other the selection
// names.
func channelsOf(configured []string, found []jobs.ChannelTotal) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range configured {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	for _, c := range found {
		if !seen[c.Channel] {
			seen[c.Channel] = true
			out = append(out, c.Channel)
		}
	}
	sort.Strings(out)
	return out
}

// exportPage is how many mismatches a CSV export reads at a time.
const exportPage = 1000

// csv streams exactly what `recon report --format csv` writes for the same
// selection, a page of rows at a time.
func (s *Server) csv(w http.ResponseWriter, r *http.Request, req *request) {
	_, q := query(r)
	mf, _, err := q.Filter(s.opt.Location, nil)
	var qe *jobs.QueryError
	if errors.As(err, &qe) {
		s.fail(w, r, req, http.StatusBadRequest, qe.Error())
		return
	}
	name := "recon-mismatches-" + s.opt.Clock.Now().In(s.opt.Location).Format("20060102-150405") + ".csv"
	rc := http.NewResponseController(w)
	out := &countingWriter{w: w, name: name}
	err = jobs.ExportCSV(r.Context(), s.opt.Store, mf, s.opt.ExportPage, out, func() {
		// A long export keeps going while the client reads; one that
		// stops reading is cut off a while after its last page.
		_ = rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout))
		_ = rc.Flush()
	})
	switch {
	case err == nil:
	case out.n == 0:
		s.internal(w, r, req, err)
	default:
		// The status went out with the first rows: abort the response, so
		// the client sees a failed download, not a short file.
		s.log.Error("console export failed", "path", r.URL.Path, "rows_written_bytes", out.n, "error", err)
		panic(http.ErrAbortHandler)
	}
}

// exportWriteTimeout is how long a CSV export may wait on its reader for a
// page.
const exportWriteTimeout = 2 * time.Minute

// countingWriter counts what went out, and sets the CSV headers before the
// first byte.
type countingWriter struct {
	w    http.ResponseWriter
	n    int64
	name string
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n == 0 {
		h := c.w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+c.name+`"`)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// detailData is one mismatch's page.
type detailData struct {
	M            repo.MismatchRecord
	MerchantName string
	Order        *recon.Order
	// Refund is the refund a refund kind's mismatch is about, with its
	// own transitions.
	Refund            *recon.Refund
	RefundTransitions []repo.Transition
	History           []repo.MismatchEvent
	Transitions       []repo.Transition
	Notifications     []repo.Notification
	Check             *jobs.Check
	CheckError        string
	CanResolve        bool
	CanChange         bool
	Open              bool
}

func mismatchID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

func (s *Server) detail(w http.ResponseWriter, r *http.Request, req *request) {
	s.showDetail(w, r, req, http.StatusOK, "", nil, "")
}

// showDetail renders mismatch {id} with an error message, a check result or
// a check error.
func (s *Server) showDetail(w http.ResponseWriter, r *http.Request, req *request, status int, msg string, check *jobs.Check, checkErr string) {
	id, ok := mismatchID(r)
	if !ok {
		s.fail(w, r, req, http.StatusNotFound, "No such mismatch.")
		return
	}
	ctx := r.Context()
	m, err := s.opt.Store.GetMismatch(ctx, id)
	if errors.Is(err, recon.ErrNotFound) {
		s.fail(w, r, req, http.StatusNotFound, fmt.Sprintf("Mismatch %d does not exist.", id))
		return
	}
	if err != nil {
		s.internal(w, r, req, err)
		return
	}
	d := detailData{M: m, Check: check, CheckError: checkErr}
	d.Open = m.Resolution != recon.ResolutionResolved
	d.CanResolve = req.User.Role >= Resolver && d.Open
	if mer, err := s.opt.Store.GetMerchant(ctx, m.MerchantID); err == nil {
		d.MerchantName = mer.Name
	} else if !errors.Is(err, recon.ErrNotFound) {
		s.internal(w, r, req, err)
		return
	}
	if o, err := s.opt.Store.GetOrder(ctx, m.OrderID); err == nil {
		d.Order = &o
		// The admin's changes move the order: never from a refund's row.
		d.CanChange = req.User.Role >= Admin && d.Open && o.Status == recon.StatusPending && m.RefundNo == ""
	} else if !errors.Is(err, recon.ErrNotFound) {
		s.internal(w, r, req, err)
		return
	}
	if m.RefundNo != "" {
		if f, err := s.opt.Store.GetRefundByNo(ctx, m.RefundNo); err == nil {
			d.Refund = &f
			if d.RefundTransitions, err = s.opt.Store.RefundTransitions(ctx, f.ID); err != nil {
				s.internal(w, r, req, err)
				return
			}
		} else if !errors.Is(err, recon.ErrNotFound) {
			s.internal(w, r, req, err)
			return
		}
	}
	if d.History, err = s.opt.Store.MismatchHistory(ctx, id); err != nil {
		s.internal(w, r, req, err)
		return
	}
	if d.Order != nil {
		if d.Transitions, err = s.opt.Store.Transitions(ctx, m.OrderID); err != nil {
			s.internal(w, r, req, err)
			return
		}
		if d.Notifications, err = s.opt.Store.NotificationsOf(ctx, m.OrderID); err != nil {
			s.internal(w, r, req, err)
			return
		}
	}
	s.renderDetail(w, r, req, status, msg, d)
}

func (s *Server) renderDetail(w http.ResponseWriter, r *http.Request, req *request, status int, msg string, d detailData) {
	s.render(w, r, req, status, "detail", fmt.Sprintf("Mismatch %d", d.M.ID), struct {
		detailData
		Message string
	}{d, msg})
}

// check looks the order up now and shows what a pass would decide, without
// applying it.
func (s *Server) check(w http.ResponseWriter, r *http.Request, req *request) {
	id, ok := mismatchID(r)
	if !ok {
		s.fail(w, r, req, http.StatusNotFound, "No such mismatch.")
		return
	}
	m, err := s.opt.Store.GetMismatch(r.Context(), id)
	if err != nil {
		s.showDetail(w, r, req, http.StatusOK, "", nil, "")
		return
	}
	o, err := s.opt.Store.GetOrder(r.Context(), m.OrderID)
	if err != nil {
		s.showDetail(w, r, req, http.StatusConflict, "The order of this mismatch is not in the database.", nil, "")
		return
	}
	c, err := s.opt.Desk.Check(r.Context(), o)
	switch {
	case errors.Is(err, jobs.ErrNoChannel):
		s.showDetail(w, r, req, http.StatusConflict, "", nil, fmt.Sprintf("Channel %q is not configured in this console.", o.Channel))
	case err != nil:
		s.internal(w, r, req, err)
	case c.LookupErr != nil:
		s.showDetail(w, r, req, http.StatusOK, "", &c, "The lookup failed: "+c.LookupErr.Error())
	default:
		s.showDetail(w, r, req, http.StatusOK, "", &c, "")
	}
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request, req *request) {
	s.write(w, r, req, "ack", func(id int64, _ string) error {
		return s.opt.Store.Acknowledge(r.Context(), id, req.User.Name, s.opt.Clock.Now())
	})
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request, req *request) {
	s.write(w, r, req, "resolve", func(id int64, note string) error {
		return s.opt.Store.Resolve(r.Context(), id, req.User.Name, note, s.opt.Clock.Now())
	})
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request, req *request) {
	s.write(w, r, req, "accept", func(id int64, note string) error {
		_, err := s.opt.Desk.Accept(r.Context(), id, req.User.Name, note, Source)
		return err
	})
}

func (s *Server) closeOrder(w http.ResponseWriter, r *http.Request, req *request) {
	s.write(w, r, req, "close", func(id int64, note string) error {
		return s.opt.Desk.CloseLocally(r.Context(), id, req.User.Name, note, Source)
	})
}

// maxNote bounds a resolution note (recon_mismatches.resolution_note).
const maxNote = 2000

// write runs one form's change for the authenticated user (never a name
// from the form) and redirects to the mismatch, or shows why nothing was
// changed.
func (s *Server) write(w http.ResponseWriter, r *http.Request, req *request, what string, change func(id int64, note string) error) {
	id, ok := mismatchID(r)
	if !ok {
		s.fail(w, r, req, http.StatusNotFound, "No such mismatch.")
		return
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if what != "ack" {
		if note == "" {
			s.showDetail(w, r, req, http.StatusBadRequest, "A note is required: say why, for whoever reads this later.", nil, "")
			return
		}
		if len([]rune(note)) > maxNote {
			s.showDetail(w, r, req, http.StatusBadRequest, fmt.Sprintf("The note is longer than %d characters.", maxNote), nil, "")
			return
		}
	}
	err := change(id, note)
	switch {
	case err == nil:
		s.log.Info("console change", "action", what, "mismatch", id, "by", req.User.Name)
		http.Redirect(w, r, "/mismatches/"+strconv.FormatInt(id, 10)+"?"+url.Values{"done": {what}}.Encode(), http.StatusSeeOther)
	case errors.Is(err, recon.ErrNotFound):
		s.fail(w, r, req, http.StatusNotFound, fmt.Sprintf("Mismatch %d does not exist.", id))
	case errors.Is(err, repo.ErrWrongResolution):
		s.showDetail(w, r, req, http.StatusConflict, "Someone changed this mismatch meanwhile; nothing was changed. Here it is as it is now.", nil, "")
	case errors.Is(err, recon.ErrConflict):
		s.showDetail(w, r, req, http.StatusConflict, "The order moved since it was read (a callback or a pass changed it); nothing was changed. Look at it again before deciding.", nil, "")
	case errors.Is(err, recon.ErrNotApplicable):
		s.showDetail(w, r, req, http.StatusConflict, "Nothing was changed: "+err.Error()+".", nil, "")
	case errors.Is(err, jobs.ErrNoChannel):
		s.showDetail(w, r, req, http.StatusConflict, "Nothing was changed: the order's channel is not configured in this console.", nil, "")
	case errors.Is(err, jobs.ErrLookup):
		s.showDetail(w, r, req, http.StatusBadGateway, "Nothing was changed: "+err.Error()+".", nil, "")
	default:
		s.internal(w, r, req, err)
	}
}

// runsData is the runs page.
type runsData struct {
	Runs []repo.Run
}

func (s *Server) runs(w http.ResponseWriter, r *http.Request, req *request) {
	runs, err := s.opt.Store.ListRuns(r.Context(), 100)
	if err != nil {
		s.internal(w, r, req, err)
		return
	}
	s.render(w, r, req, http.StatusOK, "runs", "Runs", runsData{Runs: runs})
}

// statementsData is the statements page.
type statementsData struct {
	Channel    string
	Channels   []string
	Statements []repo.Statement
}

// statements lists the imported channel statements, latest day first, with
// their totals and what reconciling them found.
func (s *Server) statements(w http.ResponseWriter, r *http.Request, req *request) {
	ch := r.URL.Query().Get("channel")
	list, err := s.opt.Store.ListStatements(r.Context(), repo.StatementFilter{Channel: ch, Limit: 200})
	if err != nil {
		s.internal(w, r, req, err)
		return
	}
	s.render(w, r, req, http.StatusOK, "statements", "Statements", statementsData{Channel: ch, Channels: s.opt.Channels, Statements: list})
}

// channelDays is how many days the channels page shows.
const channelDays = 7

// channelsData is the channels page.
type channelsData struct {
	Days []repo.ChannelDay
}

// channels shows each channel's callback health per day: results by
// callback and by lookups alone, notifications, duplicates, refusals and
// lateness.
func (s *Server) channels(w http.ResponseWriter, r *http.Request, req *request) {
	now := s.opt.Clock.Now().In(s.opt.Location)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.opt.Location)
	days, err := s.opt.Store.CallbackHealth(r.Context(), today.AddDate(0, 0, 1-channelDays), today.AddDate(0, 0, 1), s.opt.Location)
	if err != nil {
		s.internal(w, r, req, err)
		return
	}
	s.render(w, r, req, http.StatusOK, "channels", "Channels", channelsData{Days: days})
}
