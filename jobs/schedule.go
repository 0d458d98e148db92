package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
)

var specParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSpec checks a cron spec ("*/5 * * * *", "@every 1m").
func ParseSpec(spec string) (cron.Schedule, error) {
	if spec == "" {
		return nil, errors.New("cron spec is empty")
	}
	s, err := specParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron spec %q: %w", spec, err)
	}
	return s, nil
}

// Task is one scheduled pass.
type Task struct {
	Name string
	Spec string
	Run  func(ctx context.Context) error
}

// Schedule runs tasks on their cron specs until ctx is cancelled. A task
// whose previous pass is still running skips its tick (passes never overlap).
// On cancellation no new pass starts, and Schedule returns once the running
// passes, which see the cancelled context, have finished.
func Schedule(ctx context.Context, log *slog.Logger, tasks ...Task) error {
	c := cron.New(cron.WithParser(specParser), cron.WithLocation(time.UTC),
		cron.WithChain(cron.Recover(cronLogger{log}), cron.SkipIfStillRunning(cronLogger{log})))
	for _, t := range tasks {
		t := t
		if _, err := c.AddFunc(t.Spec, func() {
			if ctx.Err() != nil {
				return
			}
			if err := t.Run(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrShutdown) {
				log.Error("scheduled pass failed", "task", t.Name, "error", err)
			}
		}); err != nil {
			return fmt.Errorf("schedule %s: %w", t.Name, err)
		}
		log.Info("scheduled", "task", t.Name, "spec", t.Spec)
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "error", err)...)
}
