package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/callback"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

// CallbacksConfig is the callbacks key (CONTRACT §11).
type CallbacksConfig struct {
	// Addr is where the channels' notifications are received, a listener
	// of its own (it faces the channels; the console stays inside); ""
	// runs none.
	Addr string `yaml:"addr"`
}

func (c CallbacksConfig) validate(consoleAddr string, bad func(key, format string, args ...any) error) error {
	if c.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("callbacks.addr", "want host:port or :port, such as :8443 (got %q)", c.Addr)
	}
	if c.Addr == consoleAddr {
		return bad("callbacks.addr", "is console.addr (%s): the channels' listener must not serve the console", c.Addr)
	}
	return nil
}

// callbackShutdownGrace bounds how long a stopping listener waits for the
// notifications in flight (each is bounded by callback.HandleTimeout).
const callbackShutdownGrace = callback.HandleTimeout + 5*time.Second

// notifiers builds the adapters of the channels that can receive
// notifications: every channel whose kind verifies them, with the keys it
// needs (wechatpay api_v3_key, stripe webhook_secret, httpjson secret);
// a channel without them receives none, and says so in the log. lookups
// are those channels' refund lookups with their rate limits and retries,
// which settle the refunds a notification only claims made (Alipay's).
func (a *app) notifiers(cfg Config) (out map[string]channel.Notifier, kinds map[string]string, lookups map[string]channel.RefundLookup, err error) {
	out, kinds, lookups = map[string]channel.Notifier{}, map[string]string{}, map[string]channel.RefundLookup{}
	for i, cc := range cfg.Channels {
		missing := ""
		switch cc.Kind {
		case "wechatpay":
			if cc.APIv3Key == "" {
				missing = "api_v3_key"
			}
		case "stripe":
			if cc.WebhookSecret == "" {
				missing = "webhook_secret"
			}
		case "httpjson":
			if cc.Secret == "" {
				missing = "secret"
			}
		}
		if missing != "" {
			a.log.Warn("channel receives no notifications", "channel", cc.Name, "missing_key", fmt.Sprintf("channels[%d].%s", i, missing))
			continue
		}
		g, err := a.guardedChannel(cfg, i)
		if err != nil {
			return nil, nil, nil, err
		}
		n, ok := g.Inner.(channel.Notifier)
		if !ok {
			continue
		}
		out[cc.Name], kinds[cc.Name] = n, cc.Kind
		if g.CanLookupRefund() {
			lookups[cc.Name] = g
		}
	}
	return out, kinds, lookups, nil
}

// serveCallbacks starts the notification listener on cfg.Callbacks.Addr.
// stop shuts it down gracefully: notifications in flight finish.
// names are the channels it receives notifications for.
func (a *app) serveCallbacks(cfg Config, store *repo.Store, obs jobs.CallbackObserver) (stop func() error, served <-chan error, names []string, err error) {
	notifiers, kinds, lookups, err := a.notifiers(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	cbs := &jobs.Callbacks{Store: store, Notifiers: notifiers, RefundLookups: lookups, Policy: policyOf(cfg), Clock: recon.SystemClock{},
		Logger: a.log, Observer: obs}
	hs := callback.New(callback.Options{Handler: cbs, Kinds: kinds, Logger: a.log}).HTTPServer()
	ln, err := net.Listen("tcp", cfg.Callbacks.Addr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("callback listener on %s (callbacks.addr): %w", cfg.Callbacks.Addr, err)
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	names = make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	a.log.Info("callback listener serving", "addr", ln.Addr().String(), "channels", names)
	stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), callbackShutdownGrace)
		defer cancel()
		err := hs.Shutdown(ctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		a.log.Info("callback listener stopped")
		return err
	}
	return stop, done, names, nil
}

// refreshSettled sets the orders settled in the last hour by channel and
// source; a channel that receives notifications always has its callback
// count, zero included, so that an alert sees its callbacks stop.
func (a *app) refreshSettled(ctx context.Context, store *repo.Store, m *jobs.Metrics, notified []string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	now := time.Now().UTC()
	counts, err := store.SettledBySource(rctx, now.Add(-time.Hour), now)
	if err != nil {
		a.log.Warn("counting for metrics failed", "what", "settlements", "error", err)
		return
	}
	for _, ch := range notified {
		k := [2]string{ch, jobs.SourceCallback}
		counts[k] += 0
	}
	m.SetSettled(counts)
}

// scanOrders reads every order sc selects, a keyset page at a time.
func scanOrders(ctx context.Context, store *repo.Store, sc repo.Scan) ([]recon.Order, error) {
	const page = 1000
	var out []recon.Order
	for cur := (repo.Cursor{}); ; {
		orders, next, err := store.ScanPage(ctx, sc, cur, page)
		if err != nil {
			return nil, err
		}
		out = append(out, orders...)
		if len(orders) < page {
			return out, nil
		}
		cur = next
	}
}
