package repo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// A run row is closed once: a run another pass marked FAILED (its heartbeat
// was stale) is not flipped back by its own finish.
func TestRunIsClosedOnce(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		id, err := s.StartRun(ctx, "reconcile", true, "", "test", now)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.FailAbandonedRuns(ctx, now.Add(time.Minute), now.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("FailAbandonedRuns = %d, %v", n, err)
		}
		err = s.FinishRun(ctx, id, repo.RunSucceeded, repo.RunCounters{Scanned: 3}, "", now.Add(2*time.Hour))
		if !errors.Is(err, repo.ErrRunClosed) {
			t.Fatalf("FinishRun of a closed run = %v, want ErrRunClosed", err)
		}
		run, err := s.GetRun(ctx, id)
		if err != nil || run.Status != repo.RunFailed || run.FinishedAt == nil || !run.FinishedAt.Equal(now.Add(time.Hour)) {
			t.Fatalf("run = %+v, %v; want FAILED as the other pass closed it", run, err)
		}
		// A running one closes, once.
		id, _ = s.StartRun(ctx, "reconcile", false, "", "test", now)
		if err := s.FinishRun(ctx, id, repo.RunSucceeded, repo.RunCounters{}, "", now); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRun(ctx, id, repo.RunFailed, repo.RunCounters{}, "late", now); !errors.Is(err, repo.ErrRunClosed) {
			t.Fatalf("second FinishRun = %v, want ErrRunClosed", err)
		}
		if run, _ := s.GetRun(ctx, id); run.Status != repo.RunSucceeded {
			t.Fatalf("run = %+v, want SUCCEEDED", run)
		}
	})
}
