// Package console is the finance console of `recon serve` (CONTRACT §9):
// server-rendered pages over the mismatches, their orders and the runs, and
// the forms that acknowledge and resolve mismatches. It authenticates every
// request (an authenticating proxy's header, or HTTP basic auth), checks the
// user's role and a CSRF token on every write, and records the authenticated
// user. It decides nothing itself: reading is repo's, deciding and changing
// orders is jobs'.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

// Store is what the console reads and the writes it makes without changing
// an order.
type Store interface {
	jobs.ExportStore
	MismatchGroups(ctx context.Context, f repo.MismatchFilter) ([]repo.MismatchGroup, error)
	GetMerchant(ctx context.Context, id string) (repo.Merchant, error)
	GetMismatch(ctx context.Context, id int64) (repo.MismatchRecord, error)
	MismatchHistory(ctx context.Context, id int64) ([]repo.MismatchEvent, error)
	GetOrder(ctx context.Context, id int64) (recon.Order, error)
	Transitions(ctx context.Context, orderID int64) ([]repo.Transition, error)
	GetRefundByNo(ctx context.Context, refundNo string) (recon.Refund, error)
	RefundTransitions(ctx context.Context, refundID int64) ([]repo.Transition, error)
	NotificationsOf(ctx context.Context, orderID int64) ([]repo.Notification, error)
	ListRuns(ctx context.Context, limit int) ([]repo.Run, error)
	ListStatements(ctx context.Context, f repo.StatementFilter) ([]repo.Statement, error)
	CallbackHealth(ctx context.Context, from, to time.Time, loc *time.Location) ([]repo.ChannelDay, error)
	Acknowledge(ctx context.Context, id int64, by string, now time.Time) error
	Resolve(ctx context.Context, id int64, by, note string, now time.Time) error
}

// Desk looks orders up and makes the changes an admin may make (jobs.Desk).
type Desk interface {
	Check(ctx context.Context, o recon.Order) (jobs.Check, error)
	Accept(ctx context.Context, id int64, by, note, source string) (jobs.Check, error)
	CloseLocally(ctx context.Context, id int64, by, note, source string) error
}

var _ Desk = (*jobs.Desk)(nil)

// Source is the order_transitions.source of the changes made here.
const Source = "console"

// Options configure a Server.
type Options struct {
	Store Store
	Desk  Desk
	Auth  Auth
	// Location is where times are shown (console.timezone); nil is UTC.
	Location *time.Location
	// Channels are the configured channel names, for the filter.
	Channels []string
	// Key signs CSRF tokens; every replica behind one address needs the
	// same key. Empty: a random key (tokens die with the process).
	Key    []byte
	Clock  recon.Clock
	Logger *slog.Logger
	// PageSize is the mismatches per page (default 50).
	PageSize int
	// ExportPage is how many mismatches a CSV export reads at a time
	// (default 1000).
	ExportPage int
}

// Server is the console's HTTP handler.
type Server struct {
	opt   Options
	key   []byte
	auth  *authenticator
	pages map[string]*template.Template
	log   *slog.Logger
}

//go:embed assets
var assets embed.FS

// New checks the options and parses the templates.
func New(opt Options) (*Server, error) {
	if opt.Store == nil || opt.Desk == nil {
		return nil, errors.New("console: a store and a desk are required")
	}
	if err := opt.Auth.Validate(); err != nil {
		return nil, fmt.Errorf("console auth: %w", err)
	}
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	if opt.Clock == nil {
		opt.Clock = recon.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.PageSize <= 0 {
		opt.PageSize = 50
	}
	if opt.ExportPage <= 0 {
		opt.ExportPage = exportPage
	}
	key := opt.Key
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("console: csrf key: %w", err)
		}
	}
	s := &Server{opt: opt, key: key, auth: newAuthenticator(opt.Auth, key, opt.Clock.Now), log: opt.Logger, pages: map[string]*template.Template{}}
	for _, name := range []string{"list", "detail", "runs", "statements", "channels", "error"} {
		t, err := template.New("layout.html").Funcs(s.funcs()).ParseFS(assets, "assets/templates/layout.html", "assets/templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	return s, nil
}

// maxForm bounds a POST body: the forms hold a token and a note.
const maxForm = 64 << 10

// Handler returns the console's routes: /healthz without authentication,
// the static assets, and the pages and forms for authenticated users.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	static, _ := fs.Sub(assets, "assets/static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}))
	mux.Handle("GET /{$}", s.user(Viewer, func(w http.ResponseWriter, r *http.Request, _ *request) {
		http.Redirect(w, r, "/mismatches", http.StatusFound)
	}))
	mux.Handle("GET /mismatches", s.user(Viewer, s.list))
	mux.Handle("GET /mismatches.csv", s.user(Viewer, s.csv))
	mux.Handle("GET /mismatches/{id}", s.user(Viewer, s.detail))
	mux.Handle("GET /runs", s.user(Viewer, s.runs))
	mux.Handle("GET /statements", s.user(Viewer, s.statements))
	mux.Handle("GET /channels", s.user(Viewer, s.channels))
	mux.Handle("POST /mismatches/{id}/check", s.user(Viewer, s.check))
	mux.Handle("POST /mismatches/{id}/ack", s.user(Resolver, s.ack))
	mux.Handle("POST /mismatches/{id}/resolve", s.user(Resolver, s.resolve))
	mux.Handle("POST /mismatches/{id}/accept", s.user(Admin, s.accept))
	mux.Handle("POST /mismatches/{id}/close", s.user(Admin, s.closeOrder))
	return securityHeaders(http.NewCrossOriginProtection().Handler(mux))
}

// csp allows the console's own files only: no inline script or style, no
// framing, forms post to the console only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		next.ServeHTTP(w, r)
	})
}

// request is what a handler knows about the request beyond http's.
type request struct {
	User User
	CSRF string // the token this user's forms carry
}

// user authenticates the request, requires role at least min and, for a
// POST, a valid CSRF token, then calls h.
func (s *Server) user(min Role, h func(http.ResponseWriter, *http.Request, *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		u, err := s.auth.authenticate(r)
		if err != nil {
			var ae *authError
			if !errors.As(err, &ae) {
				ae = &authError{status: http.StatusForbidden, msg: "Not allowed."}
			}
			if ae.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="recon console", charset="UTF-8"`)
			}
			if ae.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
			}
			s.fail(w, r, nil, ae.status, ae.msg)
			return
		}
		req := &request{User: u}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				s.fail(w, r, req, http.StatusRequestEntityTooLarge, "The form is too large.")
				return
			}
			if !s.csrfValid(r, u.Name) {
				s.fail(w, r, req, http.StatusForbidden, "This form expired or did not come from this console. Reload the page and try again.")
				return
			}
		}
		req.CSRF = s.csrfToken(u.Name, s.csrfCookieValue(w, r))
		if u.Role < min {
			s.fail(w, r, req, http.StatusForbidden, fmt.Sprintf("Your role (%s) may not do this; it needs %s.", u.Role, min))
			return
		}
		h(w, r, req)
	})
}

// fail renders an error page with a message safe to show.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, req *request, status int, msg string) {
	s.render(w, r, req, status, "error", "Error", struct{ Message string }{msg})
}

// internal logs err and shows a reference to it, never the error itself.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, req *request, err error) {
	ref := make([]byte, 4)
	_, _ = rand.Read(ref)
	s.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "ref", fmt.Sprintf("%x", ref), "error", err)
	s.fail(w, r, req, http.StatusInternalServerError,
		fmt.Sprintf("Something went wrong on our side (reference %x). Try again; if it persists, tell the operators the reference.", ref))
}
