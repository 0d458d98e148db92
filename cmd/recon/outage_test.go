package main

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// tcpProxy forwards connections to a database server and can cut them all,
// as a network partition or a server restart would, without touching the
// server that other tests share.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
	})
	go p.serve()
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *tcpProxy) forward(c net.Conn) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		_ = c.Close() // the database is unreachable
		return
	}
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		_ = c.Close()
		_ = s.Close()
		return
	}
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		_ = src.Close()
	}
	go pipe(s, c)
	pipe(c, s)
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// cut closes every forwarded connection and refuses new ones.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// restore forwards new connections again.
func (p *tcpProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestDatabaseOutageFailsTheRunCleanly cuts the connection to MariaDB in the
// middle of a `recon run`: the process exits 1, nothing is half written, and
// once the database is reachable again the next pass completes the work and
// the interrupted run is closed as FAILED.
func TestDatabaseOutageFailsTheRunCleanly(t *testing.T) {
	db := repotest.NewMySQL(t)
	mc, err := mysqldrv.ParseDSN(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, mc.Addr)
	mc.Addr = proxy.ln.Addr().String()
	viaProxy := repotest.DB{Dialect: db.Dialect, DSN: mc.FormatDSN()}

	orders := 3000
	sim := crashSim(1)
	truth := seedCrashOrders(t, db.Store, orders, sim)
	cfg := crashConfig(t, viaProxy, sim, 4)
	env := []string{"RECON_DATABASE_DRIVER=mysql", "RECON_DATABASE_DSN=" + viaProxy.DSN}

	p := startRecon(t, env, "run", "--config", cfg, "--output", "json")
	exited := make(chan int, 1)
	go func() { exited <- p.wait() }()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	var atCut int64
	for atCut < int64(orders/10) {
		select {
		case code := <-exited:
			t.Fatalf("recon run ended (%d) before the outage:\n%s%s", code, p.stdout.String(), p.stderr.String())
		case <-poll.C:
			atCut = countSettled(t, db.Store)
		}
	}
	proxy.cut()
	cutAt := time.Now()
	var code int
	select {
	case code = <-exited:
	case <-time.After(time.Minute):
		t.Fatal("recon run did not stop within a minute of losing its database")
	}
	if code != exitFailed {
		t.Fatalf("exit code %d after the outage, want %d:\n%s%s", code, exitFailed, p.stdout.String(), p.stderr.String())
	}
	after := countSettled(t, db.Store)
	t.Logf("cut with %d orders settled; the process exited %s later with %d settled", atCut, time.Since(cutAt).Round(time.Millisecond), after)
	if after >= int64(orders*9/10) {
		t.Fatalf("%d of %d orders settled: the outage did not interrupt the pass", after, orders)
	}
	// Nothing half written: every settled order has its audit and outbox rows.
	repotest.CheckLedger(t, db.Store, truth, false)
	runs, err := db.Store.ListRuns(t.Context(), 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
	cutRun := runs[0]

	proxy.restore()
	expireLeases(t, db.Store) // the dead process could not release its lease
	next := startRecon(t, env, "run", "--config", cfg, "--output", "json")
	if code := next.wait(); code != 0 || runStatus(next.stdout.String()) != repo.RunSucceeded {
		t.Fatalf("pass after the outage: exit %d\n%s%s", code, next.stdout.String(), next.stderr.String())
	}
	led := repotest.CheckLedger(t, db.Store, truth, true)
	t.Log(led)
	closeAbandonedRuns(t, db.Store, env, cfg)
	got, err := db.Store.GetRun(t.Context(), cutRun.ID)
	if err != nil || got.Status != repo.RunFailed || got.FinishedAt == nil {
		t.Fatalf("interrupted run = %+v, %v; want FAILED with finished_at", got, err)
	}
}
