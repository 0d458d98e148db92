package repo_test

import (
	"context"
	"errors"
	"fmt"
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

// Runs are listed newest first by when they started, not by id: a cluster
// node hands out ids in its own steps, so a later run may have a smaller id.
func TestListRunsNewestStartFirst(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		var ids []int64
		// Started at 12:02, 12:00, 12:01, with ids in that order.
		for _, d := range []time.Duration{2, 0, 1} {
			id, err := db.Store.StartRun(ctx, "reconcile", false, "", "test", now.Add(d*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		runs, err := db.Store.ListRuns(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, r := range runs {
			got = append(got, r.ID)
		}
		if want := []int64{ids[0], ids[2], ids[1]}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("ListRuns = %v, want %v (by start time, newest first)", got, want)
		}
	})
}
