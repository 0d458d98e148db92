package jobs_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo/repotest"
)

// BenchmarkDeliver measures deliveries per second of one dispatcher at
// concurrency 32 on MariaDB/MySQL (RECON_TEST_MYSQL_DSN; SQLite otherwise)
// against a loopback merchant answering at once and after 50 ms:
//
//	RECON_TEST_MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' \
//	  go test ./jobs -run '^$' -bench BenchmarkDeliver -benchtime 5000x
func BenchmarkDeliver(b *testing.B) {
	for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%s/concurrency=32", latency), func(b *testing.B) {
			var db repotest.DB
			if repotestHasMySQL() {
				db = repotest.NewMySQL(b)
			} else {
				db = repotest.NewSQLite(b)
			}
			e := newNotifyEnv(b, db)
			m := newMerchant(b, e.clock)
			if latency > 0 {
				m.respond = func(w http.ResponseWriter, r *http.Request, _ string, _ int) {
					select {
					case <-time.After(latency):
					case <-r.Context().Done():
					}
				}
			}
			e.addMerchant("m1", m.url(), merchantSecret)
			e.seed("m1", b.N)
			// One merchant: its share is as much of the dispatcher as the
			// per-merchant cap allows (half of Concurrency).
			d := &jobs.Dispatcher{Store: db.Store, Clock: e.clock, Owner: "bench", Concurrency: 32, PerMerchantConcurrency: 32,
				BatchSize: 200, Timeout: 10 * time.Second, Lease: time.Minute, AllowPrivateNetworks: true}
			b.ResetTimer()
			start := time.Now()
			res, err := d.Run(context.Background())
			elapsed := time.Since(start)
			b.StopTimer()
			if err != nil || res.Delivered != int64(b.N) {
				b.Fatalf("delivered %d of %d: %v", res.Delivered, b.N, err)
			}
			b.ReportMetric(float64(res.Delivered)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: %d deliveries in %s on %s", latency, res.Delivered, elapsed.Round(time.Millisecond), db.Dialect)
		})
	}
}

func repotestHasMySQL() bool { return os.Getenv(repotest.EnvMySQLDSN) != "" }
