package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/httpjson"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/repo/repotest"
)

// e2eKinds renders, for each provider kind, the channel entry that points
// recon at the simulator server, and says whether its orders need a
// channel_txn_id.
var e2eKinds = []struct {
	kind    string
	channel func(url string, k simulator.Keys, f simulator.KeyFiles) string
	txnID   bool
}{
	{"httpjson", func(url string, _ simulator.Keys, _ simulator.KeyFiles) string {
		return fmt.Sprintf("{name: c, kind: httpjson, base_url: %q, secret: e2e-secret}", url)
	}, false},
	{"alipay", func(url string, k simulator.Keys, f simulator.KeyFiles) string {
		return fmt.Sprintf("{name: c, kind: alipay, base_url: %q, app_id: %q, private_key_file: %q, public_key_file: %q}",
			url+"/gateway.do", k.AlipayAppID, f.AlipayAppPrivate, f.AlipayPublic)
	}, false},
	{"wechatpay", func(url string, k simulator.Keys, f simulator.KeyFiles) string {
		return fmt.Sprintf("{name: c, kind: wechatpay, base_url: %q, mch_id: %q, cert_serial: %q, private_key_file: %q, public_key_file: %q, public_key_id: %q}",
			url, k.WechatMchID, k.WechatMerchantSerial, f.WechatMerchantPrivate, f.WechatPlatformPublic, k.WechatPlatformKeyID)
	}, false},
	{"stripe", func(url string, k simulator.Keys, _ simulator.KeyFiles) string {
		return fmt.Sprintf("{name: c, kind: stripe, base_url: %q, api_key: %q, insecure: true}", url, k.StripeAPIKey)
	}, true},
}

// TestRunAgainstSimulatorServer runs `recon run` against the simulator
// server in each provider's wire format, through the real HTTP stack, and
// checks every order against the simulator's own view of it.
func TestRunAgainstSimulatorServer(t *testing.T) {
	keys, files := channeltest.KeyFiles(t)
	for _, k := range e2eKinds {
		t.Run(k.kind, func(t *testing.T) {
			if _, ok := channelBuilders[k.kind]; !ok {
				t.Skipf("channel kind %s is not built into this binary", k.kind)
			}
			repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
				ctx := context.Background()
				simCfg := simulator.Config{Seed: 7, Secret: "e2e-secret", PaidRate: 0.5, ClosedRate: 0.2, NotFoundRate: 0.1, TransientRate: 0.2}
				srv := httptest.NewServer(simulator.New(simCfg).Server(storeOrders{s: db.Store}, keys))
				defer srv.Close()

				created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
				var orders []recon.Order
				for i := 0; i < 40; i++ {
					o := recon.Order{OrderNo: fmt.Sprintf("e2e-%s-%02d", k.kind, i), MerchantID: "m1", Channel: "c",
						Amount: int64(100 + i), Currency: "CNY", Status: recon.StatusPending, CreatedAt: created, UpdatedAt: created}
					if k.txnID {
						o.ChannelTxnID = "pi_" + strings.ReplaceAll(o.OrderNo, "-", "")
					}
					orders = append(orders, o)
				}
				if err := db.Store.InsertOrders(ctx, orders); err != nil {
					t.Fatal(err)
				}
				cfg := writeConfig(t, fmt.Sprintf("database: {driver: %s, dsn: %q}\n", db.Dialect, db.DSN)+
					"reconcile: {lookup_retry: {initial_interval: 1ms, max_interval: 5ms, max_elapsed: 5s}}\n"+
					"channels:\n  - "+k.channel(srv.URL, keys, files)+"\n")
				code, out, stderr := runCLI(t, nil, "run", "--config", cfg)
				if code != 0 {
					t.Fatalf("recon run: exit %d\n%s\n%s", code, out, stderr)
				}

				// The simulator's own answer for each order, without faults.
				ref := simulator.New(simulator.Config{Seed: 7, Secret: "e2e-secret", PaidRate: 0.5, ClosedRate: 0.2, NotFoundRate: 0.1})
				counts := map[recon.Status]int{}
				for _, o := range orders {
					want, err := ref.Lookup(ctx, o)
					if err != nil {
						t.Fatal(err)
					}
					got, err := db.Store.GetOrderByNo(ctx, o.OrderNo)
					if err != nil {
						t.Fatal(err)
					}
					exp := recon.StatusPending
					switch want.Status {
					case recon.ChannelPaid:
						exp = recon.StatusPaid
					case recon.ChannelClosed:
						exp = recon.StatusClosed
					}
					if got.Status != exp {
						t.Errorf("%s: %s, want %s (channel says %s; last error %q)", o.OrderNo, got.Status, exp, want.Status, got.LastQueryError)
					}
					if exp == recon.StatusPending && got.QueryAttempts != 1 {
						t.Errorf("%s: %d query attempts, want 1", o.OrderNo, got.QueryAttempts)
					}
					if exp == recon.StatusPaid && got.ChannelTxnID == "" {
						t.Errorf("%s: paid without a channel txn id", o.OrderNo)
					}
					counts[got.Status]++
				}
				if counts[recon.StatusPaid] == 0 || counts[recon.StatusClosed] == 0 || counts[recon.StatusPending] == 0 {
					t.Fatalf("the seed did not produce every outcome: %v", counts)
				}
			})
		})
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSimServeAnswersAboutTheDatabaseOrders(t *testing.T) {
	dir := t.TempDir()
	// --from-channel names a channel with a production secret: the
	// simulator must neither print it nor sign with it.
	const prodSecret = "prod-signing-secret-never-print"
	cfg, _ := seedCLI(t, "  - {name: sim, kind: simulator, secret: "+prodSecret+", simulator: {seed: 1, paid_rate: 1}}\n",
		[]recon.Order{cliOrder("serve-1", recon.StatusPending, time.Now().UTC().Add(-time.Hour))})
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"sim", "serve", "--addr", "127.0.0.1:0", "--keys-dir", filepath.Join(dir, "keys"), "--from-channel", "sim", "--config", cfg},
			&out, &errb, func(string) string { return "" })
	}()
	var url string
	for deadline := time.Now().Add(2 * time.Minute); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, rest, ok := strings.Cut(out.String(), "listening on "); ok {
			url, _, _ = strings.Cut(rest, "\n")
		}
		select {
		case code := <-done:
			t.Fatalf("sim serve exited %d: %s", code, errb.String())
		default:
		}
	}
	if url == "" {
		t.Fatalf("sim serve did not start: %s %s", out.String(), errb.String())
	}
	for _, f := range []string{"alipay_public.pem", "alipay_app_private.pem", "wechatpay_platform_public.pem", "wechatpay_merchant_private.pem", "insecure: true"} {
		if !strings.Contains(out.String(), f) {
			t.Fatalf("start-up output does not name %s:\n%s", f, out.String())
		}
	}
	if strings.Contains(out.String()+errb.String(), prodSecret) {
		t.Fatalf("sim serve printed the channel's configured secret:\n%s", out.String())
	}
	_, rest, _ := strings.Cut(out.String(), `secret: "`)
	secret, _, _ := strings.Cut(rest, `"`)
	if len(secret) < 32 || secret == simulator.DefaultSecret {
		t.Fatalf("printed secret %q: want a fresh random one", secret)
	}
	// Answers are signed with the printed secret, not the configured one.
	prod, err := httpjson.New(httpjson.Config{Name: "sim", BaseURL: url, Secret: prodSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Lookup(context.Background(), recon.Order{OrderNo: "serve-1"}); !errors.Is(err, channel.ErrBadSignature) {
		t.Fatalf("answer verified with the configured secret: %v", err)
	}
	c, err := httpjson.New(httpjson.Config{Name: "sim", BaseURL: url, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Lookup(context.Background(), recon.Order{OrderNo: "serve-1"})
	if err != nil || res.Status != recon.ChannelPaid || res.Amount != 1234 {
		t.Fatalf("lookup of a database order: %+v, %v", res, err)
	}
	if res, err := c.Lookup(context.Background(), recon.Order{OrderNo: "nobody"}); err != nil || res.Status != recon.ChannelNotFound {
		t.Fatalf("lookup of an unknown order: %+v, %v", res, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("sim serve exited %d after cancel: %s", code, errb.String())
	}
	// A second start reuses the keys and the secret it wrote.
	if _, _, err := simulator.LoadOrCreateKeys(filepath.Join(dir, "keys")); err != nil {
		t.Fatalf("keys written by sim serve do not load: %v", err)
	}
	if again, err := simSecret(filepath.Join(dir, "keys")); err != nil || again != secret {
		t.Fatalf("secret on a second start: %q, %v; want %q", again, err, secret)
	}
}

// TestSimServerAnswersAboutDatabaseRefunds: the simulator server answers
// refund lookups about the refunds in the database, in each provider's wire
// format, and every adapter built from config reads them through the guard.
func TestSimServerAnswersAboutDatabaseRefunds(t *testing.T) {
	keys, files := channeltest.KeyFiles(t)
	// What each wire format can say of the simulator's answers.
	sayable := map[string]map[recon.RefundChannelStatus]recon.RefundChannelStatus{
		"alipay": {recon.RefundChannelPending: recon.RefundChannelNotFound, recon.RefundChannelFailed: recon.RefundChannelNotFound,
			recon.RefundChannelAbnormal: recon.RefundChannelNotFound},
		"stripe": {recon.RefundChannelAbnormal: recon.RefundChannelPending},
	}
	statuses := []recon.RefundChannelStatus{recon.RefundChannelSucceeded, recon.RefundChannelPending, recon.RefundChannelFailed,
		recon.RefundChannelAbnormal, recon.RefundChannelNotFound}
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		sim := simulator.New(simulator.Config{Seed: 7, Secret: "e2e-secret"})
		srv := httptest.NewServer(sim.Server(storeOrders{s: db.Store}, keys))
		defer srv.Close()
		created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		o := recon.Order{OrderNo: "rf-order", MerchantID: "m1", Channel: "c", Amount: 5000, Currency: "CNY",
			Status: recon.StatusPaid, CreatedAt: created, UpdatedAt: created}
		if err := db.Store.InsertOrders(ctx, []recon.Order{o}); err != nil {
			t.Fatal(err)
		}
		stored, err := db.Store.GetOrderByNo(ctx, o.OrderNo)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range e2eKinds {
			var refunds []recon.Refund
			for i, st := range statuses {
				r := recon.Refund{RefundNo: fmt.Sprintf("rf%s%d", k.kind, i), OrderID: stored.ID, MerchantID: "m1", Channel: "c",
					Amount: int64(100 + i), Currency: "CNY", Status: recon.RefundPending, CreatedAt: created, UpdatedAt: created}
				if k.txnID {
					r.ChannelRefundID = "re_" + r.RefundNo
				}
				sim.SetRefund(r.RefundNo, simulator.RefundBehaviour{Status: st})
				refunds = append(refunds, r)
			}
			if err := db.Store.InsertRefunds(ctx, refunds); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig("cfg.yaml", []byte("channels:\n  - "+k.channel(srv.URL, keys, files)+"\n"), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			inner, err := buildChannel(cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			g := channel.NewGuarded("c", inner, 0, channel.RetryPolicy{MaxElapsed: time.Second})
			for i, r := range refunds {
				r, err := db.Store.GetRefundByNo(ctx, r.RefundNo) // as the pass reads it, with its order number
				if err != nil {
					t.Fatal(err)
				}
				want := statuses[i]
				if s, ok := sayable[k.kind][want]; ok {
					want = s
				}
				got, err := g.LookupRefund(ctx, r)
				if err != nil || got.Status != want {
					t.Errorf("%s %s: %+v, %v; want %s", k.kind, r.RefundNo, got, err, want)
				}
				if want == recon.RefundChannelSucceeded && got.Amount != r.Amount {
					t.Errorf("%s %s: amount %d, want %d", k.kind, r.RefundNo, got.Amount, r.Amount)
				}
			}
			unknown := recon.Refund{RefundNo: "rf-nobody", OrderNo: o.OrderNo, ChannelRefundID: "re_rfnobody", Amount: 1, Currency: "CNY"}
			if got, err := g.LookupRefund(ctx, unknown); err != nil || got.Status != recon.RefundChannelNotFound {
				t.Errorf("%s: unknown refund: %+v, %v; want NOT_FOUND", k.kind, got, err)
			}
		}
	})
}
