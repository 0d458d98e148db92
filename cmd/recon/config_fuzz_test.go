package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzLoadConfig feeds arbitrary bytes to LoadConfig as config.yaml. It must
// never panic; a rejected file is a ConfigError naming the file; an accepted
// one keeps every promise Validate makes to the code that runs on it (NaN
// included: every range check is written so that NaN fails it). The seed
// corpus is testdata/fuzz/FuzzLoadConfig plus the shipped config.yaml.
func FuzzLoadConfig(f *testing.F) {
	if b, err := os.ReadFile("../../config.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(""))
	f.Add([]byte("reconcile: {batch_size: 10, concurrency: 2, query_schedule: [1s, 2m]}\n"))
	env := map[string]string{"DB_PW": "pw", "SECRET": "s3cret"}
	getenv := func(k string) string { return env[k] }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadConfig("fuzz.yaml", data, getenv)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error %q (%T) is not a ConfigError naming the file", err, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate again: %v", err)
		}
		r := cfg.Reconcile
		in := func(v, lo, hi float64) bool { return v >= lo && v <= hi }
		switch {
		case !in(float64(r.BatchSize), 1, 10000), !in(float64(r.Concurrency), 1, 1024):
			t.Fatalf("batch_size %d / concurrency %d out of range", r.BatchSize, r.Concurrency)
		case !(r.Jitter >= 0 && r.Jitter < 1):
			t.Fatalf("jitter %v accepted", r.Jitter)
		case r.GracePeriod < 0 || r.MaxAge < 0 || r.Heartbeat <= 0 || cfg.Notify.Timeout <= 0:
			t.Fatalf("durations accepted: %+v", r)
		case len(r.QuerySchedule) == 0 || len(cfg.Notify.RetrySchedule) == 0:
			t.Fatal("empty schedule accepted")
		}
		for _, d := range append(append([]Duration{}, r.QuerySchedule...), cfg.Notify.RetrySchedule...) {
			if d <= 0 {
				t.Fatalf("schedule step %s accepted", d.D())
			}
		}
		names := map[string]bool{}
		for _, ch := range cfg.Channels {
			if ch.Name == "" || names[ch.Name] || !contains(ChannelKinds, ch.Kind) || !(ch.RateLimit >= 0) {
				t.Fatalf("channel %+v accepted", ch)
			}
			names[ch.Name] = true
			s := ch.Simulator
			for _, v := range []float64{s.PaidRate, s.FailedRate, s.ClosedRate, s.NotFoundRate, s.LateRate,
				s.AmountTamperRate, s.CurrencyTamperRate, s.BadSignatureRate, s.TransientRate, s.RateLimitRate} {
				if !in(v, 0, 1) {
					t.Fatalf("simulator rate %v accepted in channel %s", v, ch.Name)
				}
			}
		}
	})
}
