package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// timeouts is a channel whose calls carry a client timeout, as an HTTP
// adapter's do, and a share of which the remote end answers later than that:
// those calls fail with a transient timeout error.
type timeouts struct {
	inner   channel.Lookup
	rate    float64
	timeout time.Duration

	mu    sync.Mutex
	rng   *rand.Rand
	fired int // calls that timed out
}

func (c *timeouts) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	c.mu.Lock()
	slow := c.rng.Float64() < c.rate
	if slow {
		c.fired++
	}
	c.mu.Unlock()
	if slow {
		<-ctx.Done() // the answer comes after the client gave up
		return recon.LookupResult{}, channel.Transient(fmt.Errorf("lookup %s: no answer within %s: %w", o.OrderNo, c.timeout, ctx.Err()))
	}
	return c.inner.Lookup(ctx, o)
}

// chaosTruth asks a fault-free twin of the simulator what it finally says
// about o: late payments are looked up until they are paid.
func chaosTruth(ctx context.Context, twin *simulator.Sim, o recon.Order, lateAfter int) repotest.Truth {
	var res recon.LookupResult
	var err error
	for i := 0; i <= lateAfter; i++ {
		if res, err = twin.Lookup(ctx, o); err != nil || res.Status != recon.ChannelPending {
			break
		}
	}
	switch {
	case errors.Is(err, channel.ErrBadSignature):
		return repotest.Truth{Status: recon.ChannelPaid, Unverifiable: true}
	case err != nil:
		panic(fmt.Sprintf("fault-free simulator failed: %v", err))
	case res.Status == recon.ChannelPaid && (res.Amount != o.Amount || res.Currency != o.Currency):
		return repotest.Truth{Status: recon.ChannelPaid, Tampered: true}
	}
	return repotest.Truth{Status: res.Status}
}

// TestChannelChaosCommitsNothingWrongAndConverges runs passes against a
// channel that fails 20% of calls transiently, times out on 10%, answers 429
// with Retry-After on 5%, and tampers with 1% of the amounts and 1% of the
// signatures. After every pass no order is in a state the channel does not
// give it; tampered orders are mismatches; bad signatures never move an
// order; everything else is settled within a few reruns.
func TestChannelChaosCommitsNothingWrongAndConverges(t *testing.T) {
	repotest.ForEachDBAndCluster(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		seed := repotest.RandSeed(t)
		cfg := simulator.Config{
			Seed: int64(seed >> 1), Secret: "s3cret",
			PaidRate: 0.6, FailedRate: 0.1, ClosedRate: 0.1, LateRate: 0.1, LateAfter: 2,
			AmountTamperRate: 0.01, BadSignatureRate: 0.01,
			TransientRate: 0.2, RateLimitRate: 0.05, RetryAfter: 20 * time.Millisecond,
		}
		sim := simulator.New(cfg)
		fault := &timeouts{inner: sim, rate: 0.1, timeout: 20 * time.Millisecond, rng: rand.New(rand.NewPCG(seed, 1))}
		twinCfg := cfg
		twinCfg.TransientRate, twinCfg.RateLimitRate = 0, 0
		twin := simulator.New(twinCfg)

		n := 400
		if testing.Short() {
			n = 100
		}
		ctx := context.Background()
		truth := map[string]repotest.Truth{}
		var orders []*recon.Order
		for i := 0; i < n; i++ {
			o := repotest.Order(fmt.Sprintf("CH%05d", i), t0)
			o.Amount = int64(100 + i)
			orders = append(orders, &o)
		}
		e.seed(orders...)
		for _, o := range orders {
			truth[o.OrderNo] = chaosTruth(ctx, twin, *o, cfg.LateAfter)
		}

		// On a cluster the passes take turns on its nodes.
		pods := []*repo.Store{db.Store}
		for i := 1; i < db.Nodes(); i++ {
			pods = append(pods, db.OpenNode(t, i))
		}
		var errs int64
		for pass := 1; ; pass++ {
			rec := e.reconciler(pods[pass%len(pods)], fault)
			res, err := rec.Run(ctx, jobs.Window{})
			if err != nil {
				t.Fatalf("pass %d: %v", pass, err)
			}
			errs += res.Errors
			// No pass ever commits a state the channel does not give.
			repotest.CheckLedger(t, db.Store, truth, false)
			if open := unsettled(t, e, truth); len(open) == 0 {
				t.Logf("settled after %d passes; %d lookups failed on the way; %+v", pass, errs, res.RunCounters)
				break
			} else if pass == 12 {
				t.Fatalf("still unsettled after %d passes: %v", pass, open)
			}
			e.clock.Advance(2 * time.Minute) // every rescheduled order is due again
		}
		led := repotest.CheckLedger(t, db.Store, truth, true)
		t.Log(led)
		if fault.fired == 0 {
			t.Fatal("no call timed out: the faults did not happen")
		}
		for no, tr := range truth {
			if o := e.order(no); tr.Unverifiable && !strings.Contains(o.LastQueryError, "signature") {
				t.Fatalf("%s (bad signature): last_query_error %q", no, o.LastQueryError)
			}
		}
	})
}

// unsettled lists the orders not yet where the channel's final answer puts
// them: a terminal answer not committed, a tampered answer not held.
func unsettled(t *testing.T, e *env, truth map[string]repotest.Truth) []string {
	t.Helper()
	var rows []struct {
		OrderNo       string
		Status        string
		NextQueryAt   *time.Time
		QueryAttempts int
	}
	if err := e.db.Store.DB().Raw("SELECT order_no, status, next_query_at, query_attempts FROM payment_orders").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, r := range rows {
		tr := truth[r.OrderNo]
		switch {
		case tr.Unverifiable:
		case tr.Tampered:
			if r.NextQueryAt != nil || r.QueryAttempts == 0 {
				open = append(open, r.OrderNo+" (tampered, not held)")
			}
		case tr.Status != recon.ChannelPending && tr.Status != recon.ChannelNotFound && r.Status == string(recon.StatusPending):
			open = append(open, r.OrderNo+" ("+string(tr.Status)+")")
		}
	}
	return open
}
