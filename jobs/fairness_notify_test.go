package jobs_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// TestNotifyHungMerchantDoesNotDelayTheOthers: two merchants with 100 due
// notifications each, one whose endpoint answers nothing until the healthy
// merchant has had all its notifications (then only 504s), notify
// concurrency 4. The healthy merchant is delivered while the hung one holds
// its share of the workers; the hung merchant's rows are paused for the
// rest of the pass by its breaker after a few failures, keep their attempts
// (none goes DEAD), and only a bounded number of them are tried.
func TestNotifyHungMerchantDoesNotDelayTheOthers(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		okDone := make(chan struct{})
		hung := newMerchant(t, e.clock)
		hung.respond = func(w http.ResponseWriter, r *http.Request, _ string, _ int) {
			select {
			case <-okDone:
				w.WriteHeader(http.StatusGatewayTimeout)
			case <-r.Context().Done(): // the dispatcher gave up: it waited for this merchant
			}
		}
		ok := newMerchant(t, e.clock)
		var mu sync.Mutex
		var delivered int
		var hungBeforeOK int64 // posts to the hung merchant by the time the healthy one got its last
		var inflight, maxInflight atomic.Int64
		ok.respond = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for m := maxInflight.Load(); n > m && !maxInflight.CompareAndSwap(m, n); m = maxInflight.Load() {
			}
			time.Sleep(time.Millisecond) // overlapping posts meet here
			mu.Lock()
			if delivered++; delivered == 100 {
				hungBeforeOK = hung.total.Load()
				close(okDone)
			}
			mu.Unlock()
			w.WriteHeader(http.StatusOK)
		}
		e.addMerchant("hung", hung.url(), merchantSecret)
		e.addMerchant("ok", ok.url(), merchantSecret)
		// The hung merchant's rows are the oldest: a claim in due order
		// takes them first.
		hungIDs := e.seed("hung", 100)
		e.clock.Advance(time.Second)
		okIDs := e.seed("ok", 100)
		e.clock.Advance(time.Second)

		d := e.dispatcher(db.Store, "d1")
		// A timeout the healthy merchant's 100 posts never need, however
		// slow the machine: were they to wait for the hung merchant's
		// posts, those would time out first and be posted again.
		d.Concurrency, d.Timeout, d.BatchSize = 4, 30*time.Second, 200
		res, err := d.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the hung merchant had %d posts when the healthy one got its last; it was posted %d times; result %+v",
			hungBeforeOK, hung.total.Load(), res)
		ok.check()
		// Concurrency 4 gives one merchant at most 2 posts in flight.
		if m := maxInflight.Load(); m > 2 {
			t.Fatalf("the healthy merchant had %d posts in flight at once; want at most 2", m)
		}
		for _, id := range okIDs {
			if row := e.get(id); row.Status != repo.NotifyDelivered {
				t.Fatalf("healthy merchant's row not delivered: %+v", row)
			}
		}
		// The healthy merchant did not wait for the hung one's posts: those
		// in flight (at most its share, 2) were all still unanswered.
		if hungBeforeOK > 2 {
			t.Fatalf("the hung merchant had %d posts before the healthy one was delivered; want its 2 in flight, without waiting for them", hungBeforeOK)
		}
		tried := 0
		for _, id := range hungIDs {
			row := e.get(id)
			if row.Status != repo.NotifyPending || row.Attempts > 1 || row.LockedBy != "" {
				t.Fatalf("hung merchant's row %+v: want PENDING, unleased, at most one attempt", row)
			}
			tried += row.Attempts
		}
		// The breaker opens after 3 failures in a row; at most the requests
		// already in flight (the per-merchant cap) finish after it.
		if tried < 3 || tried > 3+4 || int64(tried) != hung.total.Load() {
			t.Fatalf("hung merchant: %d rows tried, %d posts; want 3 to 7", tried, hung.total.Load())
		}
		if res.Delivered != 100 || res.Retried != int64(tried) || res.Dead != 0 ||
			res.Claimed != res.Delivered+res.Retried+res.Deferred+res.Released {
			t.Fatalf("result %+v", res)
		}
		run, err := db.Store.GetRun(context.Background(), res.RunID)
		if err != nil || run.Deferred != res.Deferred {
			t.Fatalf("run row %+v, %v; want deferred %d", run, err, res.Deferred)
		}

		// A later pass tries the hung merchant again (a few rows), still
		// without sending any row to DEAD through the breaker.
		e.clock.Advance(time.Minute)
		res2, err := d.Run(context.Background())
		if err != nil || res2.Dead != 0 || res2.Retried < 3 || res2.Retried > 7 {
			t.Fatalf("second pass %+v, %v", res2, err)
		}
		_ = jobs.KindNotify
	})
}
