package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/repo"
)

// callbackTarget checks --callbacks-to: an http(s) URL whose path ends in
// /callbacks/{channel}; it returns the channel's name.
func callbackTarget(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageErr("--callbacks-to %q: want recon's listener URL, such as http://127.0.0.1:8443/callbacks/sim-httpjson", raw)
	}
	dir, name := path.Split(strings.TrimSuffix(u.Path, "/"))
	if !strings.HasSuffix(dir, "/callbacks/") || name == "" {
		return "", usageErr("--callbacks-to %q: the path must be /callbacks/{channel name}", raw)
	}
	return name, nil
}

// postCallbacks notifies target, as the channel would, about the PENDING
// orders of channel in the database: every interval it plans the
// notifications of the orders it has not seen yet
// (simulator.DefaultCallbackPlan) and posts them, until ctx ends.
func (a *app) postCallbacks(ctx context.Context, store *repo.Store, sim *simulator.Sim, target, channel string, interval time.Duration) {
	seen := map[string]bool{}
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var fresh []recon.Order
		now := time.Now().UTC()
		page, err := scanOrders(ctx, store, repo.Scan{Backfill: true, From: now.Add(-24 * time.Hour), To: now.Add(time.Minute), Channel: channel})
		if err != nil {
			a.log.Warn("simulator callbacks: reading orders failed", "error", err)
		}
		for _, o := range page {
			if !seen[o.OrderNo] {
				seen[o.OrderNo] = true
				fresh = append(fresh, o)
			}
		}
		if cbs := sim.Callbacks(fresh, simulator.DefaultCallbackPlan); len(cbs) > 0 {
			go func() {
				st, err := simulator.PostCallbacks(ctx, client, target, cbs)
				if err == nil {
					fmt.Fprintf(a.stdout, "callbacks to %s: %d posted, %d handled, %d refused, %d failed\n", target, st.Sent, st.Handled, st.Refused, st.Failed)
				}
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
