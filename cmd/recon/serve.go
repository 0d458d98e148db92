package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/recon-dev/recon/console"
	"github.com/recon-dev/recon/jobs"
)

func init() {
	extraCommands = append(extraCommands, (*app).serveCommand)
}

// ConsoleConfig is the console key (CONTRACT §7, §9).
type ConsoleConfig struct {
	Addr string `yaml:"addr"`
	// Timezone is where the console shows times (an IANA name); its date
	// filters are days there too.
	Timezone string            `yaml:"timezone"`
	Auth     ConsoleAuthConfig `yaml:"auth"`
	// CSRFKey signs the forms' CSRF tokens; replicas behind one address
	// need the same one. Empty: a random key per process.
	CSRFKey string `yaml:"csrf_key" json:"-"`
}

// ConsoleAuthConfig is console.auth.
type ConsoleAuthConfig struct {
	Mode           string        `yaml:"mode"`
	Header         string        `yaml:"header"`
	TrustedProxies []string      `yaml:"trusted_proxies"`
	Users          []ConsoleUser `yaml:"users"`
}

// ConsoleUser is one console.auth.users entry.
type ConsoleUser struct {
	Name         string `yaml:"name"`
	Role         string `yaml:"role"`
	PasswordHash string `yaml:"password_hash" json:"-"`
}

func defaultConsole() ConsoleConfig {
	return ConsoleConfig{Addr: ":8080", Timezone: "UTC",
		Auth: ConsoleAuthConfig{Mode: console.ModeProxy, Header: console.DefaultHeader}}
}

// validate checks the console keys whatever the command; what only matters
// to a running console (users exist) is checked by recon serve.
func (c ConsoleConfig) validate(bad func(key, format string, args ...any) error) error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("console.addr", "want host:port or :port, such as :8080 (got %q)", c.Addr)
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "" {
		return bad("console.timezone", "%q is not a time zone name such as UTC or Asia/Shanghai", c.Timezone)
	}
	if _, err := c.auth(); err != nil {
		key, msg := authErrorKey(err)
		return bad(key, "%s", msg)
	}
	return nil
}

// authErrorKey names the key of a console.auth error: the user entry's
// setting when it is about one.
func authErrorKey(err error) (key, msg string) {
	var ue *console.UserError
	if errors.As(err, &ue) {
		return "console.auth." + ue.Key(), ue.Msg
	}
	return "console.auth", err.Error()
}

// auth converts console.auth, without requiring users.
func (c ConsoleConfig) auth() (console.Auth, error) {
	a := console.Auth{Mode: c.Auth.Mode, Header: c.Auth.Header}
	if a.Mode != console.ModeProxy && a.Mode != console.ModeBasic {
		return a, fmt.Errorf("mode must be proxy or basic (got %q)", c.Auth.Mode)
	}
	for i, s := range c.Auth.TrustedProxies {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			ip, ierr := netip.ParseAddr(strings.TrimSpace(s))
			if ierr != nil {
				return a, fmt.Errorf("trusted_proxies[%d]: %q is not a CIDR such as 10.0.0.0/8", i, s)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		a.TrustedProxies = append(a.TrustedProxies, p.Masked())
	}
	for i, u := range c.Auth.Users {
		role, err := console.ParseRole(u.Role)
		if err != nil {
			return a, fmt.Errorf("users[%d] (%s): %v", i, u.Name, err)
		}
		a.Users = append(a.Users, console.User{Name: u.Name, Role: role, PasswordHash: u.PasswordHash})
	}
	if len(a.Users) > 0 {
		if err := a.Validate(); err != nil {
			return a, err
		}
	}
	return a, nil
}

func (a *app) serveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve the finance console on console.addr (and /metrics, /healthz on metrics.addr) until stopped",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			return a.serve(cmd.Context(), cfg)
		},
	}
}

func (a *app) serve(ctx context.Context, cfg Config) error {
	auth, err := cfg.Console.auth()
	if err == nil {
		err = auth.Validate()
	}
	if err != nil {
		key, msg := authErrorKey(err)
		return &ConfigError{File: cfg.path, Key: key, Msg: msg}
	}
	loc, _ := time.LoadLocation(cfg.Console.Timezone)
	chans, store, err := a.openAll(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	names := make([]string, 0, len(cfg.Channels))
	for _, c := range cfg.Channels {
		names = append(names, c.Name)
	}
	srv, err := console.New(console.Options{
		Store: store, Desk: &jobs.Desk{Store: store, Channels: chans, Policy: policyOf(cfg)},
		Auth: auth, Location: loc, Channels: names, Key: []byte(cfg.Console.CSRFKey), Logger: a.log,
	})
	if err != nil {
		return err
	}
	metrics := jobs.NewMetrics()
	metrics.Registry().MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store.ObserveConflicts(metrics.DBConflict)
	if cfg.Metrics.Addr != "" {
		stop, err := a.serveMetrics(cfg.Metrics.Addr, metrics)
		if err != nil {
			return err
		}
		defer stop()
	}
	var callbacksServed <-chan error
	var notified []string
	if cfg.Callbacks.Addr != "" {
		stopCallbacks, served, names, err := a.serveCallbacks(cfg, store, metrics)
		if err != nil {
			return err
		}
		callbacksServed, notified = served, names
		defer func() {
			if err := stopCallbacks(); err != nil {
				a.log.Error("callback listener shutdown", "err", err)
			}
		}()
	}
	ln, err := net.Listen("tcp", cfg.Console.Addr)
	if err != nil {
		return fmt.Errorf("console server on %s (console.addr): %w", cfg.Console.Addr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute, // a large CSV export
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	a.log.Info("console serving", "addr", ln.Addr().String(), "auth", auth.Mode, "users", len(auth.Users), "timezone", loc.String())
	// The open-mismatch gauges, for alerts, refreshed every minute.
	a.refreshGauges(ctx, cfg, store, metrics, jobs.KindBackfill)
	a.refreshSettled(ctx, store, metrics, notified)
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			a.refreshGauges(ctx, cfg, store, metrics, jobs.KindBackfill)
			a.refreshSettled(ctx, store, metrics, notified)
		case err := <-served:
			return fmt.Errorf("console server: %w", err)
		case err := <-callbacksServed:
			return fmt.Errorf("callback listener: %w", err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			err := hs.Shutdown(sctx)
			if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
				err = serr
			}
			a.log.Info("console stopped")
			return err
		}
	}
}
