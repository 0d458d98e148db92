package console_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/console"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

var t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

const (
	viewer   = "vic@example.com"
	resolver = "rita@example.com"
	admin    = "ann@example.com"
	merchant = "杭州小店"
)

var users = []console.User{{Name: viewer, Role: console.Viewer}, {Name: resolver, Role: console.Resolver}, {Name: admin, Role: console.Admin}}

// env is one database with three mismatches, the simulator behind the
// desk, and a console in proxy mode trusting 127.0.0.1.
type env struct {
	t      *testing.T
	db     repotest.DB
	sim    *simulator.Sim
	clock  *recon.FakeClock
	h      http.Handler
	orders map[string]*recon.Order
	ids    map[string]int64 // mismatch id by order number
	// beforeLookup runs inside the channel lookup (to move an order meanwhile).
	beforeLookup func()
}

type hookedLookup struct {
	e     *env
	inner channel.Lookup
}

func (h hookedLookup) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	if h.e.beforeLookup != nil {
		h.e.beforeLookup()
	}
	return h.inner.Lookup(ctx, o)
}

func newEnv(t *testing.T, db repotest.DB, mod func(*console.Options)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, db: db, sim: simulator.New(simulator.Config{Seed: 1}), clock: recon.NewFakeClock(t0),
		orders: map[string]*recon.Order{}, ids: map[string]int64{}}
	if err := db.Store.UpsertMerchant(ctx, repo.Merchant{ID: "m1", Name: merchant, NotifyURL: "https://m1.example/n"}, t0); err != nil {
		t.Fatal(err)
	}
	mk := func(no string, st recon.Status, amount int64) *recon.Order {
		o := repotest.Order(no, t0)
		o.Status, o.Amount = st, amount
		e.orders[no] = &o
		return &o
	}
	amt, stuck, paid := mk("o-amt", recon.StatusPending, 10000), mk("o-stuck", recon.StatusPending, 2550), mk("o-paid", recon.StatusPaid, 399)
	db.Seed(t, amt, stuck, paid)
	for _, c := range []struct {
		o   *recon.Order
		m   recon.Mismatch
		day time.Duration
	}{
		{amt, recon.Mismatch{Kind: recon.MismatchAmount, LocalStatus: recon.StatusPending, ChannelStatus: recon.ChannelPaid,
			LocalAmount: 10000, ChannelAmount: 10050, LocalCurrency: "CNY", ChannelCurrency: "CNY", Detail: "channel amount 10050, local 10000"}, 0},
		{stuck, recon.Mismatch{Kind: recon.MismatchStuckPending, LocalStatus: recon.StatusPending, ChannelStatus: recon.ChannelPending,
			LocalAmount: 2550, LocalCurrency: "CNY", Detail: "still PENDING"}, 24 * time.Hour},
		{paid, recon.Mismatch{Kind: recon.MismatchLocalPaidChannelUnpaid, LocalStatus: recon.StatusPaid, ChannelStatus: recon.ChannelClosed,
			LocalAmount: 399, LocalCurrency: "CNY", Detail: "local PAID, channel CLOSED"}, 48 * time.Hour},
	} {
		if _, err := db.Store.RecordMismatch(ctx, *c.o, c.m, repo.CommitMeta{Source: "test", Now: t0.Add(c.day)}); err != nil {
			t.Fatal(err)
		}
		ms, err := db.Store.ListMismatches(ctx, repo.MismatchFilter{OrderID: c.o.ID})
		if err != nil || len(ms) != 1 {
			t.Fatalf("mismatch of %s: %v %v", c.o.OrderNo, ms, err)
		}
		e.ids[c.o.OrderNo] = ms[0].ID
	}
	e.sim.Set("o-amt", simulator.Behaviour{Status: recon.ChannelPaid, Amount: 10050})
	e.sim.Set("o-stuck", simulator.Behaviour{Status: recon.ChannelPending})
	e.sim.Set("o-paid", simulator.Behaviour{Status: recon.ChannelClosed})
	g := channel.NewGuarded("sim", hookedLookup{e, e.sim}, 0, channel.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, MaxElapsed: 10 * time.Millisecond})
	loc, _ := time.LoadLocation("Asia/Shanghai")
	opt := console.Options{
		Store: db.Store,
		Desk:  &jobs.Desk{Store: db.Store, Channels: map[string]jobs.Channel{"sim": g}, Clock: e.clock, Policy: recon.Policy{MaxAge: 24 * time.Hour, Schedule: []time.Duration{time.Minute}}},
		Auth: console.Auth{Mode: console.ModeProxy, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			Users: users},
		Location: loc, Channels: []string{"sim"}, Clock: e.clock, Key: []byte("test key"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&opt)
	}
	srv, err := console.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	e.h = srv.Handler()
	return e
}

// do serves one request from 127.0.0.1 as user ("" for none).
func (e *env) do(method, path, user string, body url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	e.t.Helper()
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.RemoteAddr = "127.0.0.1:40000"
	if user != "" {
		r.Header.Set("X-Forwarded-Email", user)
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e *env) get(path, user string) *httptest.ResponseRecorder { return e.do("GET", path, user, nil) }

var tokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// session opens the mismatch page as user and returns the CSRF cookie and
// the forms' token.
func (e *env) session(user string, id int64) (*http.Cookie, string) {
	e.t.Helper()
	w := e.get(path(id), user)
	if w.Code != 200 {
		e.t.Fatalf("GET %s as %s: %d", path(id), user, w.Code)
	}
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == "recon_csrf" {
			cookie = c
		}
	}
	m := tokenRE.FindStringSubmatch(w.Body.String())
	if cookie == nil || m == nil {
		e.t.Fatalf("no csrf cookie or token for %s", user)
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		e.t.Fatalf("csrf cookie is not HttpOnly and SameSite=Strict: %+v", cookie)
	}
	return cookie, m[1]
}

// post sends a form as user with a valid CSRF cookie and token (unless
// token is "-": none).
func (e *env) post(user string, id int64, action string, form url.Values, token string) *httptest.ResponseRecorder {
	e.t.Helper()
	cookie, tok := e.session(user, id)
	if form == nil {
		form = url.Values{}
	}
	switch token {
	case "":
		form.Set("csrf_token", tok)
	case "-":
	default:
		form.Set("csrf_token", token)
	}
	return e.do("POST", path(id)+"/"+action, user, form, cookie)
}

func path(id int64) string { return "/mismatches/" + itoa(id) }

func itoa(n int64) string { return strconvFormat(n) }

func (e *env) mismatch(no string) repo.MismatchRecord {
	e.t.Helper()
	m, err := e.db.Store.GetMismatch(context.Background(), e.ids[no])
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) order(no string) recon.Order {
	e.t.Helper()
	o, err := e.db.Store.GetOrderByNo(context.Background(), no)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func has(t *testing.T, w *httptest.ResponseRecorder, code int, wants ...string) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d; body:\n%s", w.Code, code, w.Body.String())
	}
	for _, s := range wants {
		if !strings.Contains(w.Body.String(), s) {
			t.Fatalf("body lacks %q:\n%s", s, w.Body.String())
		}
	}
}

func lacks(t *testing.T, w *httptest.ResponseRecorder, nots ...string) {
	t.Helper()
	for _, s := range nots {
		if strings.Contains(w.Body.String(), s) {
			t.Fatalf("body has %q:\n%s", s, w.Body.String())
		}
	}
}

func TestAuthentication(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		has(t, e.get("/healthz", ""), 200, "ok")
		has(t, e.get("/static/console.css", ""), 200, "font")
		has(t, e.get("/static/", ""), 404)
		has(t, e.get("/mismatches", ""), 403, "sign-in proxy sent no user")
		has(t, e.get("/mismatches", "mallory@example.com"), 403, "not a user of this console")
		// The header is believed from the trusted proxy only.
		r := httptest.NewRequest("GET", "/mismatches", nil)
		r.RemoteAddr = "10.1.2.3:5555"
		r.Header.Set("X-Forwarded-Email", admin)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		has(t, w, 403, "not one it uses")
		lacks(t, w, "o-amt", merchant)
		// A second identity header (one the client sent, one the proxy
		// added) is refused whichever comes first.
		for _, names := range [][]string{{admin, viewer}, {viewer, admin}, {admin, admin}} {
			r := httptest.NewRequest("GET", "/mismatches", nil)
			r.RemoteAddr = "127.0.0.1:40000"
			for _, n := range names {
				r.Header.Add("X-Forwarded-Email", n)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			has(t, w, 400, "more than one user")
			lacks(t, w, "o-amt")
		}
		// Case does not matter in an e-mail address.
		has(t, e.get("/mismatches", strings.ToUpper(viewer)), 200, "o-amt")
		for _, u := range []string{viewer, resolver, admin} {
			w := e.get("/mismatches", u)
			has(t, w, 200, u)
			h := w.Header()
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Fatalf("CSP %q", csp)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" || h.Get("Cache-Control") != "no-store" {
				t.Fatalf("security headers: %v", h)
			}
		}
	})
}

// basicEnv is env with basic auth for ann, and req signs in from an
// address.
func basicEnv(t *testing.T, db repotest.DB) (*env, []byte, func(addr, user, pw string, forwardedFor ...string) *httptest.ResponseRecorder) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), console.MinBcryptCost)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, db, func(o *console.Options) {
		o.Auth = console.Auth{Mode: console.ModeBasic, Users: []console.User{{Name: "ann", Role: console.Admin, PasswordHash: string(hash)}},
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	})
	return e, hash, func(addr, user, pw string, forwardedFor ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/mismatches", nil)
		r.RemoteAddr = addr
		for _, f := range forwardedFor {
			r.Header.Add("X-Forwarded-For", f)
		}
		if user != "" {
			r.SetBasicAuth(user, pw)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w
	}
}

func TestBasicAuth(t *testing.T) {
	// Signing in reads no database: one is enough, and bcrypt is slow.
	e, hash, from := basicEnv(t, repotest.NewSQLite(t))
	req := func(user, pw string) *httptest.ResponseRecorder { return from("192.0.2.1:1234", user, pw) }
	w := req("", "")
	has(t, w, 401)
	if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("no basic challenge: %v", w.Header())
	}
	// An unknown user and a wrong password get the same answer, so
	// the answer does not tell which names exist.
	wrong, unknown := req("ann", "wrong"), req("bob", "s3cret pass")
	has(t, wrong, 401, "Wrong user name or password")
	if unknown.Code != wrong.Code || unknown.Body.String() != wrong.Body.String() {
		t.Fatalf("unknown user: %d %s\nwrong password: %d %s", unknown.Code, unknown.Body, wrong.Code, wrong.Body)
	}
	has(t, req("ann", "s3cret pass"), 200, "o-amt")
	has(t, req("ann", "s3cret pass"), 200, "o-amt") // verified once, remembered
	lacks(t, req("ann", "wrong"), string(hash))
	// Five failed sign-ins of a name in a minute (bob's counted too)
	// make it wait for the rest of the minute; a browser that signed
	// in already keeps working.
	e.clock.Advance(time.Minute)
	for i := 0; i < 5; i++ {
		has(t, req("ann", "wrong"), 401)
	}
	w = req("ann", "another guess")
	has(t, w, 429, "Too many failed sign-ins", "try again in 60 seconds")
	if w.Header().Get("Retry-After") != "60" {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	has(t, req("ann", "s3cret pass"), 200)
	for i := 0; i < 5; i++ {
		has(t, req("bob", "guess"), 401)
	}
	has(t, req("bob", "guess"), 429)
	e.clock.Advance(time.Minute)
	has(t, req("ann", "another guess"), 401)
}

// TestBasicAuthLockoutIsCountedBeforeBcrypt sends a burst of parallel
// guesses: only as many as the limit reach bcrypt (the others are refused
// before it), the right password then waits for the window like any other,
// and works again when it ends.
func TestBasicAuthLockoutIsCountedBeforeBcrypt(t *testing.T) {
	// Signing in reads no database: one is enough, and bcrypt is slow.
	e, _, from := basicEnv(t, repotest.NewSQLite(t))
	codes := make(chan int, 100)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- from("192.0.2.1:1234", "ann", "guess "+strconv.Itoa(i)).Code
		}()
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[401] != 5 || n[429] != 95 {
		t.Fatalf("answers to 100 parallel guesses: %v, want 5 checked (401) and 95 refused (429)", n)
	}
	// From another address too: the name waits out its window.
	has(t, from("198.51.100.7:1", "ann", "s3cret pass"), 429)
	e.clock.Advance(59 * time.Second)
	has(t, from("192.0.2.1:1234", "ann", "s3cret pass"), 429, "try again in 1 seconds")
	e.clock.Advance(time.Second)
	has(t, from("192.0.2.1:1234", "ann", "s3cret pass"), 200, "o-amt")
}

// TestBasicAuthLimitsAnAddress guesses many names from one address: the
// address waits, others sign in. (Which address counts behind a proxy and
// for IPv6: TestClientKey.)
func TestBasicAuthLimitsAnAddress(t *testing.T) {
	// Signing in reads no database: one is enough, and bcrypt is slow.
	e, _, from := basicEnv(t, repotest.NewSQLite(t))
	for i := 0; i < 20; i++ {
		has(t, from("203.0.113.9:5000", "user"+strconv.Itoa(i), "guess"), 401)
	}
	has(t, from("203.0.113.9:5001", "ann", "s3cret pass"), 429, "from this address")
	has(t, from("198.51.100.7:1", "ann", "s3cret pass"), 200, "o-amt")
	e.clock.Advance(time.Minute)
	has(t, from("203.0.113.9:5002", "ann", "guess"), 401)
}

// TestChartDaysAreTheConsolesDays: a mismatch detected at 01:30 in
// Shanghai (17:30 UTC the day before) is charted on the Shanghai day, the
// day the list shows and the date filter names.
func TestChartDaysAreTheConsolesDays(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		m := recon.Mismatch{Kind: recon.MismatchFee, LocalStatus: recon.StatusPaid, ChannelStatus: recon.ChannelPaid,
			LocalAmount: 399, ChannelAmount: 399, LocalCurrency: "CNY", ChannelCurrency: "CNY", Detail: "fee"}
		at := time.Date(2026, 11, 20, 17, 30, 0, 0, time.UTC)
		if _, err := db.Store.RecordMismatch(context.Background(), *e.orders["o-paid"], m, repo.CommitMeta{Source: "test", Now: at}); err != nil {
			t.Fatal(err)
		}
		w := e.get("/mismatches?kind=FEE_MISMATCH", viewer)
		has(t, w, 200, "2026-11-21 01:30:00", "Detected per day (Asia/Shanghai)", "<title>2026-11-21: 1 FEE_MISMATCH</title>")
		lacks(t, w, "2026-11-20: 1")
		has(t, e.get("/mismatches?kind=FEE_MISMATCH&from=2026-11-21&to=2026-11-22", viewer), 200, `id="total-count">1<`)
	})
}

func TestListFiltersTotalsAndPaging(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, func(o *console.Options) { o.PageSize = 2 })
		w := e.get("/mismatches", viewer)
		// Unresolved by default; merchant names; amounts in major units with
		// the currency; times in the display zone, named.
		has(t, w, 200, "o-amt", "o-stuck", merchant, "100.00 CNY", "100.50 CNY", "0.50 CNY", "Asia/Shanghai (UTC&#43;08:00)",
			"2026-11-20 16:00:00", `id="chart"`, "page 1 of 2", `id="total-count">3<`)
		lacks(t, w, "o-paid") // third, on page 2
		has(t, e.get("/mismatches?page=2", viewer), 200, "o-paid", "page 2 of 2")
		// A page past the end (an old link) shows the last page.
		has(t, e.get("/mismatches?page=9", viewer), 200, "o-paid", "page 2 of 2")
		lacks(t, e.get("/mismatches?page=9", viewer), "o-amt")
		w = e.get("/mismatches?kind=AMOUNT_MISMATCH", viewer)
		has(t, w, 200, "o-amt", `id="total-count">1<`)
		lacks(t, w, "o-stuck")
		has(t, e.get("/mismatches?channel=sim&merchant=m1&from=2026-11-21&to=2026-11-22", viewer), 200, "o-stuck", `id="total-count">1<`)
		w = e.get("/mismatches?resolution=RESOLVED", viewer)
		has(t, w, 200, `id="total-count">0<`, "No mismatches in this selection")
		w = e.get("/mismatches?merchant=other", viewer)
		has(t, w, 200, `id="total-count">0<`)
		has(t, e.get("/mismatches?kind=NOPE", viewer), 400, "kind: &#34;NOPE&#34; is not a mismatch kind")
		has(t, e.get("/mismatches?from=2026-11-22&to=2026-11-21", viewer), 400, "must be before")
		// Script in a parameter comes back escaped.
		w = e.get("/mismatches?merchant=%3Cscript%3Ealert(1)%3C/script%3E", viewer)
		has(t, w, 200, "&lt;script&gt;")
		lacks(t, w, "<script>alert")
	})
}

// TestListAndExportReadPages counts the rows every query of a request
// reads from recon_mismatches: the list reads its page and the groups of
// its totals, the CSV export a page at a time, never the whole selection.
func TestListAndExportReadPages(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, func(o *console.Options) { o.PageSize, o.ExportPage = 2, 4 })
		day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
		var alike []repo.MismatchRecord
		for i := range 40 {
			alike = append(alike, repo.MismatchRecord{MerchantID: "m1", Channel: "sim", DetectedAt: day.Add(time.Duration(i) * time.Minute),
				Mismatch: recon.Mismatch{Kind: recon.MismatchStuckPending, LocalStatus: recon.StatusPending, ChannelStatus: recon.ChannelPending,
					LocalAmount: 100, LocalCurrency: "CNY"}})
		}
		// The env's mismatches have order ids from 1, as the alike rows
		// will: move them aside.
		if err := db.Store.DB().Exec("UPDATE recon_mismatches SET order_id = order_id + 1000").Error; err != nil {
			t.Fatal(err)
		}
		repotest.Mismatches(t, db.Store, alike)
		var mu sync.Mutex
		var reads []int64
		if err := db.Store.DB().Callback().Query().After("gorm:query").Register("test:mismatch_rows", func(tx *gorm.DB) {
			if strings.Contains(tx.Statement.SQL.String(), "recon_mismatches") {
				mu.Lock()
				reads = append(reads, tx.RowsAffected)
				mu.Unlock()
			}
		}); err != nil {
			t.Fatal(err)
		}
		request := func(path string, wants ...string) []int64 {
			t.Helper()
			mu.Lock()
			reads = nil
			mu.Unlock()
			has(t, e.get(path, viewer), 200, wants...)
			mu.Lock()
			defer mu.Unlock()
			return reads
		}
		// 43 unresolved mismatches; the page shows 2 and totals all 43
		// from a handful of groups.
		got := request("/mismatches?page=5", `id="total-count">43<`, "page 5 of 22", ">O-6<", ">O-7<")
		var sum int64
		for _, n := range got {
			sum += n
		}
		if sum > 2+5 || !slices.Contains(got, 2) {
			t.Fatalf("the list read %v rows of recon_mismatches (%d) for a page of 2", got, sum)
		}
		got = request("/mismatches.csv", "O-40", "o-amt")
		for _, n := range got {
			if n > 4 {
				t.Fatalf("the export read %v rows of recon_mismatches in one query; its pages are 4", got)
			}
		}
		if len(got) < 43/4 {
			t.Fatalf("the export read %v: not every row", got)
		}
	})
}

func TestCSVIsTheReport(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		// Pages of 2 rows: the export reads the 3 rows in two.
		e := newEnv(t, db, func(o *console.Options) { o.ExportPage = 2 })
		ctx := context.Background()
		for _, c := range []struct {
			query string
			q     jobs.ReportQuery
		}{
			{"", jobs.ReportQuery{Resolution: "UNRESOLVED"}},
			{"?resolution=ALL", jobs.ReportQuery{}},
			{"?kind=STUCK_PENDING&resolution=OPEN", jobs.ReportQuery{Kind: "STUCK_PENDING", Resolution: "OPEN"}},
			{"?from=2026-11-21", jobs.ReportQuery{From: "2026-11-21T00:00:00+08:00", Resolution: "UNRESOLVED"}},
		} {
			w := e.get("/mismatches.csv"+c.query, viewer)
			has(t, w, 200)
			if ct := w.Header().Get("Content-Type"); ct != "text/csv; charset=utf-8" || !strings.Contains(w.Header().Get("Content-Disposition"), "attachment") {
				t.Fatalf("csv headers: %v", w.Header())
			}
			mf, desc, err := c.q.Filter(time.UTC, nil)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := jobs.BuildReport(ctx, db.Store, mf, desc, t0)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if err := rep.WriteCSV(&want); err != nil {
				t.Fatal(err)
			}
			if w.Body.String() != want.String() {
				t.Fatalf("csv%s differs from the report:\n%s\nwant:\n%s", c.query, w.Body.String(), want.String())
			}
			if len(rep.Rows) == 0 {
				t.Fatalf("csv%s: the case selects nothing", c.query)
			}
		}
		if !strings.Contains(e.get("/mismatches.csv", viewer).Body.String(), merchant) {
			t.Fatal("csv lacks the merchant's name")
		}
		has(t, e.get("/mismatches.csv?resolution=maybe", viewer), 400, "resolution")
	})
}

func TestDetailByRole(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		id := e.ids["o-amt"]
		w := e.get(path(id), viewer)
		has(t, w, 200, "AMOUNT_MISMATCH", "o-amt", merchant, "100.00 CNY", "100.50 CNY", "OPENED", `id="check-now"`, "view and export only")
		lacks(t, w, `id="ack"`, `id="resolve"`, `id="accept"`)
		w = e.get(path(id), resolver)
		has(t, w, 200, `id="ack"`, `id="resolve"`)
		lacks(t, w, `id="accept"`, `id="close"`)
		has(t, e.get(path(id), admin), 200, `id="ack"`, `id="resolve"`, `id="accept"`, `id="close"`)
		// A terminal order offers no change.
		w = e.get(path(e.ids["o-paid"]), admin)
		has(t, w, 200, `id="resolve"`)
		lacks(t, w, `id="accept"`, `id="close"`)
		has(t, e.get("/mismatches/999999", viewer), 404, "does not exist")
		has(t, e.get("/mismatches/abc", viewer), 404)
	})
}

func TestCheckNowAppliesNothing(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		before := e.order("o-amt")
		w := e.post(viewer, e.ids["o-amt"], "check", nil, "")
		has(t, w, 200, `id="decision"`, "HOLD: mismatch AMOUNT_MISMATCH", "Nothing was applied", "Channel now")
		if after := e.order("o-amt"); after.Version != before.Version || after.Status != before.Status || after.QueryAttempts != before.QueryAttempts {
			t.Fatalf("check changed the order: %+v -> %+v", before, after)
		}
		has(t, e.post(viewer, e.ids["o-amt"], "check", nil, "-"), 403, "expired")
	})
}

func TestAcknowledgeAndResolve(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		id := e.ids["o-amt"]
		// No token, a wrong token, another user's token: refused.
		has(t, e.post(resolver, id, "ack", nil, "-"), 403, "expired")
		has(t, e.post(resolver, id, "ack", nil, "forged"), 403)
		_, vicToken := e.session(viewer, id)
		has(t, e.post(resolver, id, "ack", nil, vicToken), 403)
		// A viewer with a good token may not.
		has(t, e.post(viewer, id, "ack", nil, ""), 403, "role (viewer)")
		if m := e.mismatch("o-amt"); m.Resolution != recon.ResolutionOpen {
			t.Fatalf("refused acks changed it: %s", m.Resolution)
		}
		w := e.post(resolver, id, "ack", url.Values{"by": {"mallory"}}, "")
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != path(id)+"?done=ack" {
			t.Fatalf("ack: %d %v", w.Code, w.Header())
		}
		has(t, e.get(path(id)+"?done=ack", resolver), 200, "Acknowledged.", "ACKNOWLEDGED")
		// Twice: the state changed meanwhile.
		has(t, e.post(resolver, id, "ack", nil, ""), 409, "nothing was changed")

		has(t, e.post(resolver, id, "resolve", url.Values{"note": {"  "}}, ""), 400, "A note is required")
		has(t, e.post(resolver, id, "resolve", url.Values{"note": {strings.Repeat("x", 2001)}}, ""), 400, "longer than")
		has(t, e.post(resolver, id, "resolve", url.Values{"note": {strings.Repeat("x", 70000)}}, ""), 413)
		w = e.post(resolver, id, "resolve", url.Values{"note": {"refunded 0.50, FIN-1"}, "resolved_by": {"mallory"}, "by": {"mallory"}, "user": {"mallory"}}, "")
		if w.Code != http.StatusSeeOther {
			t.Fatalf("resolve: %d %s", w.Code, w.Body.String())
		}
		m := e.mismatch("o-amt")
		if m.Resolution != recon.ResolutionResolved || m.ResolvedBy != resolver || m.ResolutionNote != "refunded 0.50, FIN-1" {
			t.Fatalf("resolved: %+v", m)
		}
		hist, err := db.Store.MismatchHistory(context.Background(), id)
		if err != nil || len(hist) != 3 || hist[1].By != resolver || hist[2].By != resolver {
			t.Fatalf("history: %+v %v", hist, err)
		}
		w = e.get(path(id), resolver)
		has(t, w, 200, "RESOLVED", "refunded 0.50, FIN-1", resolver)
		lacks(t, w, "mallory", `id="resolve"`)
		has(t, e.post(resolver, id, "resolve", url.Values{"note": {"again"}}, ""), 409)
	})
}

// The admin's changes go through the guarded update of whatever orders table
// recon is mapped to.
func TestAdminChangesTheOrder(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		amt, stuck, paid := e.ids["o-amt"], e.ids["o-stuck"], e.ids["o-paid"]
		has(t, e.post(resolver, amt, "accept", url.Values{"note": {"x"}}, ""), 403, "needs admin")
		has(t, e.post(admin, amt, "accept", nil, ""), 400, "A note is required")
		has(t, e.post(admin, amt, "accept", url.Values{"note": {"x"}}, "-"), 403)

		// The order moves while the console looks it up: refused, nothing written.
		e.beforeLookup = func() {
			e.beforeLookup = nil
			if !db.Move(t, db.Store, e.orders["o-amt"].ID, recon.StatusFailed) {
				t.Error("the callback could not move o-amt")
			}
		}
		has(t, e.post(admin, amt, "accept", url.Values{"note": {"customer paid 100.50"}}, ""), 409, "order moved since it was read")
		if o := e.order("o-amt"); o.Status != recon.StatusFailed {
			t.Fatalf("after the race the order is %s", o.Status)
		}
		if m := e.mismatch("o-amt"); m.Resolution != recon.ResolutionOpen {
			t.Fatalf("a refused accept resolved the mismatch: %+v", m)
		}
		// Now FAILED (terminal): no longer changeable.
		has(t, e.post(admin, amt, "accept", url.Values{"note": {"x"}}, ""), 409, "never changes a terminal order")

		// Close the stuck order locally.
		w := e.post(admin, stuck, "close", url.Values{"note": {"customer abandoned"}, "resolved_by": {"mallory"}}, "")
		if w.Code != http.StatusSeeOther {
			t.Fatalf("close: %d %s", w.Code, w.Body.String())
		}
		o := e.order("o-stuck")
		if o.Status != recon.StatusClosed {
			t.Fatalf("closed order: %+v", o)
		}
		trs, _ := db.Store.Transitions(ctx, o.ID)
		notes, _ := db.Store.NotificationsOf(ctx, o.ID)
		if len(trs) != 1 || trs[0].Source != console.Source || trs[0].ToStatus != recon.StatusClosed || len(notes) != 1 || notes[0].Event != recon.EventClosed {
			t.Fatalf("audit %+v outbox %+v", trs, notes)
		}
		if m := e.mismatch("o-stuck"); m.Resolution != recon.ResolutionResolved || m.ResolvedBy != admin || m.ResolutionNote != "customer abandoned" {
			t.Fatalf("mismatch: %+v", m)
		}
		has(t, e.get(path(stuck)+"?done=close", admin), 200, "The order is closed", "CLOSED", "console", "order.closed")

		// A terminal order is never changed.
		has(t, e.post(admin, paid, "close", url.Values{"note": {"x"}}, ""), 409, "never changes a terminal order")
		if o := e.order("o-paid"); o.Status != recon.StatusPaid {
			t.Fatalf("paid order changed: %+v", o)
		}
	})
}

func TestAdminAcceptsTheChannel(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		id := e.ids["o-amt"]
		w := e.post(admin, id, "accept", url.Values{"note": {"customer paid 100.50; 0.50 refunded"}}, "")
		if w.Code != http.StatusSeeOther {
			t.Fatalf("accept: %d %s", w.Code, w.Body.String())
		}
		o := e.order("o-amt")
		trs, _ := db.Store.Transitions(ctx, o.ID)
		notes, _ := db.Store.NotificationsOf(ctx, o.ID)
		if o.Status != recon.StatusPaid || o.ChannelTxnID == "" || len(trs) != 1 || trs[0].Source != console.Source || len(notes) != 1 || notes[0].Event != recon.EventPaid {
			t.Fatalf("order %+v audit %+v outbox %+v", o, trs, notes)
		}
		if m := e.mismatch("o-amt"); m.Resolution != recon.ResolutionResolved || m.ResolvedBy != admin {
			t.Fatalf("mismatch: %+v", m)
		}
		// A channel that says nothing final cannot be accepted.
		has(t, e.post(admin, e.ids["o-stuck"], "accept", url.Values{"note": {"x"}}, ""), 409, "not a final state")
	})
}

func TestRuns(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		id, err := db.Store.StartRun(ctx, jobs.KindReconcile, false, "", "host/1", t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Store.FinishRun(ctx, id, repo.RunSucceeded, repo.RunCounters{Scanned: 1234, Paid: 77}, "", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		has(t, e.get("/runs", viewer), 200, "reconcile", "SUCCEEDED", "1234", "77", "2026-11-20 16:00:00", "1m0s")
		has(t, e.get("/runs", ""), 403)
	})
}

func strconvFormat(n int64) string { return strconv.FormatInt(n, 10) }

func TestStatements(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		has(t, e.get("/statements", viewer), 200, "No statements yet")
		imp := repo.StatementImport{Channel: "sim", Day: "2026-11-19", Source: repo.SourceFile, Origin: "bill.csv", SHA256: "ab", Size: 10}
		if err := db.Store.FailStatement(context.Background(), imp, "lines do not add up to the summary", t0); err != nil {
			t.Fatal(err)
		}
		has(t, e.get("/statements", viewer), 200, "2026-11-19", "FAILED", "lines do not add up to the summary")
		has(t, e.get("/statements?channel=other", viewer), 200, "No statements yet")
		has(t, e.get("/statements", ""), 403)
	})
}

func TestChannelOnlyHasNoOrder(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		f := repo.Finding{Order: recon.Order{OrderNo: "unknown-1", Channel: "sim"}, Mismatch: recon.Mismatch{Kind: recon.MismatchChannelOnly,
			ChannelStatus: recon.ChannelPaid, ChannelAmount: 500, ChannelCurrency: "CNY", LocalCurrency: "CNY", ChannelTxnID: "T9", Detail: "statement payment"}}
		if _, err := db.Store.RecordFindings(ctx, []repo.Finding{f}, repo.CommitMeta{Source: "statement", Now: t0}); err != nil {
			t.Fatal(err)
		}
		ms, err := db.Store.ListMismatches(ctx, repo.MismatchFilter{Kind: recon.MismatchChannelOnly})
		if err != nil || len(ms) != 1 {
			t.Fatalf("%v %v", ms, err)
		}
		has(t, e.get("/mismatches?kind=CHANNEL_ONLY", viewer), 200, "unknown-1", "5.00 CNY")
		w := e.get(path(ms[0].ID), admin)
		has(t, w, 200, "CHANNEL_ONLY", "recon knows no order for this", "5.00 CNY", `id="resolve"`)
		lacks(t, w, `id="check-now"`, `id="accept"`, `id="close"`, "no longer in the database")
	})
}

// A lookup that fails, or a channel this console does not have, changes
// nothing and says so.
func TestLookupFailuresChangeNothing(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		id := e.ids["o-amt"]
		e.sim.Set("o-amt", simulator.Behaviour{Status: recon.ChannelPaid, BadSignature: true})
		has(t, e.post(viewer, id, "check", nil, ""), 200, `id="check-error"`, "The lookup failed")
		has(t, e.post(admin, id, "accept", url.Values{"note": {"x"}}, ""), 502, "Nothing was changed", "could not be asked")
		if o := e.order("o-amt"); o.Status != recon.StatusPending {
			t.Fatalf("order %+v", o)
		}
		if m := e.mismatch("o-amt"); m.Resolution != recon.ResolutionOpen {
			t.Fatalf("mismatch %+v", m)
		}

		e2 := newEnv(t, repotest.NewSQLite(t), func(o *console.Options) { o.Desk = &jobs.Desk{Store: o.Store.(*repo.Store)} })
		has(t, e2.post(viewer, e2.ids["o-amt"], "check", nil, ""), 409, "is not configured in this console")
		has(t, e2.post(admin, e2.ids["o-amt"], "accept", url.Values{"note": {"x"}}, ""), 409, "not configured in this console")
	})
}

// TestChannelsPage shows a channel's day: an order settled by its callback
// (delivered twice) and one settled by a lookup whose callback never came.
func TestChannelsPage(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		has(t, e.get("/channels", viewer), 200, "No settlements or notifications")
		amt, stuck := *e.orders["o-amt"], *e.orders["o-stuck"]
		for _, o := range []*recon.Order{&amt, &stuck} {
			got, err := db.Store.GetOrder(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			*o = got
		}
		r := recon.LookupResult{Status: recon.ChannelPaid, Amount: amt.Amount, Currency: amt.Currency, TxnID: "T1"}
		out := recon.Decide(amt, r, recon.Policy{}, t0, false)
		paidAt := t0.Add(-4 * time.Second)
		rec := repo.CallbackRecord{Channel: "sim", EventID: "E1", OrderNo: amt.OrderNo, OrderID: amt.ID, Outcome: recon.CallbackSettled, PaidAt: &paidAt, ReceivedAt: t0}
		for range 2 {
			if _, err := db.Store.CommitCallback(ctx, &out, rec, repo.CommitMeta{Source: jobs.SourceCallback, Now: t0}); err != nil {
				t.Fatal(err)
			}
		}
		r2 := recon.LookupResult{Status: recon.ChannelPaid, Amount: stuck.Amount, Currency: stuck.Currency, TxnID: "T2"}
		if _, err := db.Store.Commit(ctx, recon.Decide(stuck, r2, recon.Policy{}, t0, false), repo.CommitMeta{Source: "reconcile", Now: t0}); err != nil {
			t.Fatal(err)
		}
		page := e.get("/channels", viewer)
		has(t, page, 200, "2026-11-20", "<td>sim</td>", `<td class="num">1</td><td class="num">1</td><td class="num">1</td><td class="num">1</td><td class="num">0</td>`, "4s")
		has(t, e.get("/channels", ""), 403)
	})
}
