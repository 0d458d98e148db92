// Package callback is the listener of the channels' asynchronous
// notifications (CONTRACT §11): one route per channel, POST
// /callbacks/{channel}, with the limits a listener facing the internet needs
// and each provider's exact answers. It decides nothing: the notification
// goes to jobs.Callbacks (verify in the channel's adapter, decide in the
// domain, commit in repo), and the result comes back as the provider's
// answer.
package callback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/httpjson"
	"github.com/recon-dev/recon/channel/wechatpay"
	"github.com/recon-dev/recon/jobs"
)

// Limits of the listener.
const (
	// MaxBodyBytes is the largest notification read; a longer one is
	// refused unread (413). Real notifications are a few kilobytes.
	MaxBodyBytes = 64 << 10
	// HandleTimeout bounds one notification's work. It does not follow the
	// client's connection: a notification whose sender hung up still
	// finishes its transaction (and a duplicate later finds it handled).
	HandleTimeout = 15 * time.Second
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// listener's, against slow or idle clients.
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
)

// Handler takes one notification; jobs.Callbacks is the one recon uses.
type Handler interface {
	Handle(ctx context.Context, channel string, body []byte, header http.Header) (jobs.CallbackResult, error)
}

var _ Handler = (*jobs.Callbacks)(nil)

// Options configure a Server.
type Options struct {
	Handler Handler
	// Kinds maps each channel that receives notifications to its kind
	// (alipay, wechatpay, stripe, httpjson, simulator), which chooses the
	// answers.
	Kinds  map[string]string
	Logger *slog.Logger
}

// Server serves the notification routes.
type Server struct {
	opts Options
	mux  *http.ServeMux
}

// New returns a server for opts.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("/callbacks/{channel}", s.serve)
	// Nothing else is served here: not the console, not metrics.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "not found", http.StatusNotFound) })
	return s
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// HTTPServer is an http.Server for the handler with the listener's
// timeouts and header limit.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("channel")
	kind, known := s.opts.Kinds[name]
	defer func() {
		// One notification's panic is its own: answered as refused (the
		// channel retries), logged with its stack, the listener goes on.
		if p := recover(); p != nil {
			s.opts.Logger.Error("notification handler panicked", "channel", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			refuse(w, kind, http.StatusInternalServerError, "internal error")
		}
	}()
	if !known {
		refuse(w, kind, http.StatusNotFound, "no such channel")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, kind, http.StatusMethodNotAllowed, "POST only")
		return
	}
	// The body alone is the notification: the URL's query is never read
	// (an Alipay form merged with a query would verify something else).
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			refuse(w, kind, http.StatusRequestEntityTooLarge, "notification too large")
			return
		}
		refuse(w, kind, http.StatusBadRequest, "notification not read")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), HandleTimeout)
	defer cancel()
	res, _ := s.opts.Handler.Handle(ctx, name, body, r.Header)
	if res.Handled {
		handled(w, kind)
		return
	}
	refuse(w, kind, res.Status, reason(res))
}

// reason is what a refused notification is told: a category, never an
// error's text (no internals reach the internet).
func reason(res jobs.CallbackResult) string {
	switch res.Outcome {
	case jobs.CallbackBadSignature:
		return "signature does not verify"
	case jobs.CallbackMalformed:
		return "malformed notification"
	case jobs.CallbackNoChannel:
		return "no such channel"
	case "order_unknown":
		return "order not found yet"
	}
	return "try again later"
}

// handled writes the kind's answer that stops the channel's retries.
func handled(w http.ResponseWriter, kind string) {
	switch kind {
	case "alipay":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, alipay.NotifyAnswer)
	case "wechatpay":
		w.WriteHeader(http.StatusNoContent)
	case "stripe":
		writeJSON(w, http.StatusOK, map[string]bool{"received": true})
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, httpjson.NotifyAnswer)
	}
}

// refuse writes the kind's refused answer (the channel retries): Alipay
// 400 "fail", WeChat Pay the status with {"code":"FAIL"}, Stripe and
// httpjson 400 (CONTRACT §11). status is kept where the kind allows it
// (WeChat Pay; any kind for 404, 405, 413 and 500, which say what the
// request itself did wrong or that recon failed).
func refuse(w http.ResponseWriter, kind string, status int, msg string) {
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	switch status {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge, http.StatusInternalServerError:
	default:
		if kind != "wechatpay" {
			status = http.StatusBadRequest
		}
	}
	switch kind {
	case "alipay":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "fail")
	case "wechatpay":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(wechatpay.NotifyFailure(msg))
	case "stripe":
		writeJSON(w, status, map[string]string{"error": msg})
	default:
		writeJSON(w, status, map[string]string{"code": "FAIL", "msg": msg})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
