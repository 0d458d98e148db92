package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/repo"
)

func init() {
	extraCommands = append(extraCommands, (*app).simCommand)
}

func (a *app) simCommand() *cobra.Command {
	sim := &cobra.Command{Use: "sim", Short: "Simulated payment channels for staging and demos"}
	var addr, keysDir, from, callbacksTo string
	var callbacksEvery time.Duration
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the simulator over HTTP in every wire format (httpjson, Alipay, WeChat Pay v3, Stripe)",
		Long: `Serve the simulated channel over HTTP so that recon (or anything else) can be
pointed at it as if it were the real provider:

  httpjson   GET  /order/get_result?orderId=...
  alipay     POST /gateway.do                      (alipay.trade.query, alipay.trade.close)
  wechatpay  GET  /v3/pay/transactions/out-trade-no/{no}?mchid=...,  POST .../close
  stripe     GET  /v1/payment_intents/{id},  POST /v1/payment_intents/{id}/cancel

and the refunds of refund_orders (CONTRACT §10):

  httpjson   GET  /refund/get_result?refundId=...
  alipay     POST /gateway.do                      (alipay.trade.fastpay.refund.query)
  wechatpay  GET  /v3/refund/domestic/refunds/{refund_no}
  stripe     GET  /v1/refunds/{channel_refund_id}  (re_{refund_no} for a refund without one)

and each day's statement in the provider's format (recon statement fetch):

  httpjson   GET  /statement?date=YYYY-MM-DD
  alipay     POST /gateway.do  (alipay.data.dataservice.bill.downloadurl.query), then the zip
  wechatpay  GET  /v3/bill/tradebill?bill_date=...&bill_type=ALL, then the file
  stripe     GET  /v1/balance_transactions?created[gte]=...&created[lt]=...

Answers are about the orders in the configured database, shaped by the
simulator: block of the channel named by --from-channel (the first channel of
kind simulator by default), with the same fault injection as the in-process
simulator, and signed as each provider signs. The keys live in --keys-dir
(generated on first start); point recon's private_key_file / public_key_file
at the files printed on start-up. httpjson answers are signed with a random
secret generated into --keys-dir as well, never with a secret from
config.yaml: --from-channel may name a production channel.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			sc, err := simulatorFor(cfg, from)
			if err != nil {
				return err
			}
			var cbChannel string
			if callbacksTo != "" {
				if cbChannel, err = callbackTarget(callbacksTo); err != nil {
					return err
				}
			}
			return a.withStore(cmd, func(ctx context.Context, store *repo.Store) error {
				keys, files, err := simulator.LoadOrCreateKeys(keysDir)
				if err != nil {
					return usageErr("--keys-dir %s: %v", keysDir, err)
				}
				if sc.Secret, err = simSecret(keysDir); err != nil {
					return usageErr("--keys-dir %s: %v", keysDir, err)
				}
				sim := simulator.New(sc)
				sim.SetStatementOrders(storeOrders{s: store})
				sim.SetStatementZone(cfg.Statements.Location())
				// The notifications start once the banner (with the
				// secret that verifies them) is printed.
				listening := func() {}
				if callbacksTo != "" {
					listening = func() { go a.postCallbacks(ctx, store, sim, callbacksTo, cbChannel, callbacksEvery) }
				}
				return a.serveSim(ctx, addr, sim.Server(storeOrders{s: store}, keys), sc.Secret, keys, files, listening)
			})
		},
	}
	serve.Flags().StringVar(&addr, "addr", "127.0.0.1:8081", "address to listen on")
	serve.Flags().StringVar(&keysDir, "keys-dir", "sim-keys", "directory of the simulator's key files (created if missing)")
	serve.Flags().StringVar(&from, "from-channel", "", "take the simulator settings from this channel of config.yaml")
	serve.Flags().StringVar(&callbacksTo, "callbacks-to", "", "post the channel's notifications of the database's PENDING orders to recon's listener, "+
		"http(s)://host:port/callbacks/{channel}, signed as httpjson with the simulator's secret: some late, some twice, failures and a lost share never, "+
		"out of order, some forged with a bad signature")
	serve.Flags().DurationVar(&callbacksEvery, "callbacks-every", 5*time.Second, "how often --callbacks-to looks for new orders")
	sim.AddCommand(serve)
	return sim
}

// simulatorFor returns the simulator settings of the channel named from, or
// of the first simulator channel when from is empty.
func simulatorFor(cfg Config, from string) (simulator.Config, error) {
	for _, cc := range cfg.Channels {
		if (from == "" && cc.Kind == "simulator") || (from != "" && cc.Name == from) {
			return simulatorConfig(cc), nil
		}
	}
	if from != "" {
		return simulator.Config{}, usageErr("--from-channel %q: no such channel in %s", from, cfg.path)
	}
	return simulator.Config{Seed: 1}, nil
}

// serveSim serves the simulator on addr, printing the channels' config
// entries first; listening runs once they are printed.
func (a *app) serveSim(ctx context.Context, addr string, h http.Handler, secret string, keys simulator.Keys, f simulator.KeyFiles,
	listening func()) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usageErr("--addr %s: %v", addr, err)
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(a.stdout, `simulator listening on %s
channels for recon's config.yaml:
  - {name: sim-httpjson, kind: httpjson, base_url: %s, secret: %q}
  - {name: sim-alipay, kind: alipay, base_url: %s/gateway.do, app_id: %q,
     private_key_file: %s, public_key_file: %s, insecure: true}
  - {name: sim-wechatpay, kind: wechatpay, base_url: %s, mch_id: %q, cert_serial: %q,
     private_key_file: %s, public_key_file: %s, public_key_id: %q, insecure: true}
  - {name: sim-stripe, kind: stripe, base_url: %s, api_key: %q, insecure: true}
`, url, url, secret, url, keys.AlipayAppID, f.AlipayAppPrivate, f.AlipayPublic,
		url, keys.WechatMchID, keys.WechatMerchantSerial, f.WechatMerchantPrivate, f.WechatPlatformPublic, keys.WechatPlatformKeyID,
		url, keys.StripeAPIKey)
	listening()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("simulator server: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// simSecretFile holds the secret the simulator server signs httpjson
// answers with, in --keys-dir.
const simSecretFile = "httpjson_secret"

// simSecret returns the simulator server's httpjson signing secret: the one
// in dir, or a fresh random one written there on first start. A channel's
// configured secret is never used (nor printed): --from-channel may name a
// production channel, whose secret must not sign a simulator's answers.
func simSecret(dir string) (string, error) {
	p := filepath.Join(dir, simSecretFile)
	b, err := os.ReadFile(p)
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	s := "simsec_" + hex.EncodeToString(raw[:])
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// storeOrders answers the simulator's order questions from the database;
// statements cover the orders of channel ("" for every channel).
type storeOrders struct {
	s       *repo.Store
	channel string
}

var _ simulator.StatementOrders = storeOrders{}

// OrdersCreated streams the orders created in [from, to) a keyset page at a
// time.
func (o storeOrders) OrdersCreated(ctx context.Context, from, to time.Time, fn func(recon.Order) error) error {
	sc := repo.Scan{Backfill: true, From: from, To: to, IncludeTerminal: true, Channel: o.channel}
	var cur repo.Cursor
	for !cur.Done() {
		page, next, err := o.s.ScanPage(ctx, sc, cur, 1000)
		if err != nil {
			return err
		}
		for _, ord := range page {
			if err := fn(ord); err != nil {
				return err
			}
		}
		cur = next
	}
	return nil
}

var _ simulator.TxnOrderSource = storeOrders{}

func (o storeOrders) OrderByNo(ctx context.Context, no string) (recon.Order, bool, error) {
	return found(o.s.GetOrderByNo(ctx, no))
}

func (o storeOrders) OrderByTxnID(ctx context.Context, id string) (recon.Order, bool, error) {
	return found(o.s.GetOrderByTxnID(ctx, id))
}

var _ simulator.RefundSource = storeOrders{}

// RefundByNo answers the simulator's refund questions from refund_orders
// (or the mapped refunds table).
func (o storeOrders) RefundByNo(ctx context.Context, no string) (recon.Refund, bool, error) {
	return found(o.s.GetRefundByNo(ctx, no))
}

// found turns a read's recon.ErrNotFound into "not there".
func found[T any](v T, err error) (T, bool, error) {
	if errors.Is(err, recon.ErrNotFound) {
		var zero T
		return zero, false, nil
	}
	return v, err == nil, err
}
