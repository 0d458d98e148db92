package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/callback"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

// demoCallbacks is the demo's callback story: the simulated channels post
// their notifications to a listener on loopback (some twice, some forged,
// failures and a lost share never), the on-time ones before the pass and
// the late ones after it.
type demoCallbacks struct {
	a      *app
	hs     *http.Server
	url    string
	onTime map[string][]simulator.Callback
	late   map[string][]simulator.Callback
	stats  simulator.PostStats
	dups   int
	forged int
}

// startDemoCallbacks starts the listener and plans every channel's
// notifications about the seeded orders.
func (a *app) startDemoCallbacks(ctx context.Context, cfg Config, store *repo.Store, sims []ChannelConfig) (*demoCallbacks, error) {
	d := &demoCallbacks{a: a, onTime: map[string][]simulator.Callback{}, late: map[string][]simulator.Callback{}}
	notifiers, kinds := map[string]channel.Notifier{}, map[string]string{}
	for _, cc := range sims {
		sim := simulator.New(simulatorConfig(cc))
		notifiers[cc.Name], kinds[cc.Name] = sim, cc.Kind
		orders, err := scanOrders(ctx, store, repo.Scan{Backfill: true, To: time.Now().UTC().Add(time.Hour), Channel: cc.Name})
		if err != nil {
			return nil, err
		}
		for _, cb := range sim.Callbacks(orders, simulator.DefaultCallbackPlan) {
			if cb.Duplicate {
				d.dups++
			}
			if cb.Forged {
				d.forged++
			}
			if cb.After > 0 {
				cb.After = 0
				d.late[cc.Name] = append(d.late[cc.Name], cb)
			} else {
				d.onTime[cc.Name] = append(d.onTime[cc.Name], cb)
			}
		}
	}
	cbs := &jobs.Callbacks{Store: store, Notifiers: notifiers, Policy: policyOf(cfg), Clock: recon.SystemClock{}, Logger: a.log}
	d.hs = callback.New(callback.Options{Handler: cbs, Kinds: kinds, Logger: a.log}).HTTPServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: callback listener: %w", err)
	}
	go func() { _ = d.hs.Serve(ln) }()
	d.url = "http://" + ln.Addr().String() + "/callbacks/"
	return d, nil
}

// post sends one batch of every channel's notifications.
func (d *demoCallbacks) post(ctx context.Context, batch map[string][]simulator.Callback) (simulator.PostStats, error) {
	var all simulator.PostStats
	for name, cbs := range batch {
		st, err := simulator.PostCallbacks(ctx, http.DefaultClient, d.url+name, cbs)
		if err != nil {
			return all, err
		}
		all.Sent, all.Handled, all.Refused, all.Failed = all.Sent+st.Sent, all.Handled+st.Handled, all.Refused+st.Refused, all.Failed+st.Failed
	}
	d.stats.Sent, d.stats.Handled, d.stats.Refused = d.stats.Sent+all.Sent, d.stats.Handled+all.Handled, d.stats.Refused+all.Refused
	return all, nil
}

// summary prints the story on one screen, from what the database recorded.
func (d *demoCallbacks) summary(ctx context.Context, store *repo.Store) error {
	now := time.Now().UTC()
	days, err := store.CallbackHealth(ctx, now.Add(-48*time.Hour), now.Add(time.Hour), time.UTC)
	if err != nil {
		return err
	}
	var byCallback, without, duplicates, events int64
	for _, day := range days {
		byCallback, without, duplicates, events = byCallback+day.ByCallback, without+day.WithoutCallback, duplicates+day.Duplicates, events+day.Callbacks
	}
	w := d.a.stdout
	fmt.Fprintf(w, "\nchannel callbacks (POST /callbacks/{channel} on a loopback listener):\n")
	fmt.Fprintf(w, "  %-54s %d (%d answered as handled, %d refused)\n", "notifications posted", d.stats.Sent, d.stats.Handled, d.stats.Refused)
	fmt.Fprintf(w, "  %-54s %d\n", "orders settled by their callback", byCallback)
	fmt.Fprintf(w, "  %-54s %d of %d\n", "duplicate deliveries taken once", duplicates, d.dups)
	fmt.Fprintf(w, "  %-54s %d\n", "forged notifications refused (bad signature)", d.forged)
	fmt.Fprintf(w, "  %-54s %d\n", "events recorded once in recon_callbacks", events)
	fmt.Fprintf(w, "  %-54s %d\n", "orders recon's lookups settled, no callback ever came", without)
	return nil
}

func (d *demoCallbacks) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.hs.Shutdown(ctx)
}
