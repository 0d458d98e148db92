package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/channel/wechatpay"
)

// TestStatementRunPerKindAgainstSimServe runs `recon statement run` for an
// alipay, a wechatpay and a stripe channel against `recon sim serve`: each
// fetches the day's statement in its provider's format (Alipay's signed bill
// URL and GBK zip, WeChat Pay's signed trade bill answer and hashed
// download, Stripe's balance transactions), verifies and parses it, and
// reconciles it with the orders: late payments settled, the simulator's
// planted discrepancies reported, nothing new the second time.
func TestStatementRunPerKindAgainstSimServe(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	const day = "2026-11-22"
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, loc)
	for _, ch := range []string{"ali", "wx", "st"} {
		t.Run(ch, func(t *testing.T) {
			// One database per channel: sim serve makes statements of every
			// order it holds, as one merchant account's would be.
			var orders []recon.Order
			for i := 0; i < 40; i++ {
				o := cliOrder(fmt.Sprintf("%s-%03d", strings.ToUpper(ch), i), recon.StatusPending, start.Add(time.Duration(i)*30*time.Minute).UTC())
				o.Channel = ch
				if ch == "st" {
					o.ChannelTxnID = fmt.Sprintf("pi_3StmtKind%06d", i)
				}
				orders = append(orders, o)
			}
			simCfg, store := seedCLI(t, "  - {name: sim, kind: simulator, simulator: {seed: 5, paid_rate: 0.7, closed_rate: 0.2}}\n", orders)
			keysDir := simKeysDir(t)
			url, _ := startSimServeKeys(t, simCfg, keysDir)
			// The keys sim serve signs with, as it loaded them.
			keys, files, err := simulator.LoadOrCreateKeys(keysDir)
			if err != nil {
				t.Fatal(err)
			}
			var dsn string
			for _, l := range strings.Split(readFile(t, simCfg), "\n") {
				if strings.HasPrefix(l, "database:") {
					dsn = l
				}
			}
			entry := map[string]string{
				"ali": fmt.Sprintf("{name: ali, kind: alipay, base_url: %q, app_id: %q, private_key_file: %q, public_key_file: %q, fee_rate: 0.006, insecure: true}",
					url+simulator.AlipayGatewayPath, keys.AlipayAppID, files.AlipayAppPrivate, files.AlipayPublic),
				"wx": "{name: wx, kind: wechatpay, fee_rate: 0.006, insecure: true, " + wechatEntry(keys, url, files.WechatMerchantPrivate, files.WechatPlatformPublic) + "}",
				"st": fmt.Sprintf("{name: st, kind: stripe, base_url: %q, api_key: %q, insecure: true, fee_rate: 0.006}", url, keys.StripeAPIKey),
			}[ch]
			cfg := writeConfig(t, dsn+"\nstatements: {timezone: Asia/Shanghai}\nchannels:\n  - "+entry+"\n")

			code, out, stderr := runCLI(t, nil, "statement", "run", "--channel", ch, "--date", day, "--output", "json", "--fail-on-mismatch", "--config", cfg)
			if code != exitMismatch {
				t.Fatalf("statement run: exit %d, want 3 (the planted discrepancies)\n%s\n%s", code, out, stderr)
			}
			var res map[string]any
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if res["status"] != "RECONCILED" || res["lines"].(float64) < 20 || res["settled"].(float64) < 10 ||
				res["channel_only"].(float64) != 1 || res["amount_mismatches"].(float64) != 1 || res["fee_mismatches"].(float64) != 1 ||
				res["refund_mismatches"].(float64) < 2 {
				t.Errorf("result %s", out)
			}
			paid := 0
			for _, o := range orders {
				got, err := store.GetOrderByNo(context.Background(), o.OrderNo)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status == recon.StatusPaid {
					paid++
				}
			}
			if float64(paid) != res["settled"].(float64) {
				t.Errorf("%d orders PAID, %v settled", paid, res["settled"])
			}
			// The same day again: nothing new.
			code, out, stderr = runCLI(t, nil, "statement", "run", "--channel", ch, "--date", day, "--fail-on-mismatch", "--config", cfg)
			if code != 0 || !strings.Contains(out, "new mismatches 0") {
				t.Fatalf("run again: exit %d\n%s\n%s", code, out, stderr)
			}
			// A file in the provider's format whose lines do not add up fails,
			// naming the line.
			bad := filepath.Join(t.TempDir(), "bad")
			writeFileT(t, bad, badStatement(t, ch))
			code, out, stderr = runCLI(t, nil, "statement", "import", "--channel", ch, "--date", "2026-11-21", "--file", bad, "--config", cfg)
			if code != exitFailed || !strings.Contains(stderr, "bad statement file: line ") {
				t.Errorf("bad file: exit %d, want 1 and the line\n%s\n%s", code, out, stderr)
			}
		})
	}
}

// badStatement is a statement of 2026-11-21 in the format of channel ch
// whose rows do not add up (Alipay, WeChat Pay) or whose net is not amount
// minus fee (Stripe).
func badStatement(t *testing.T, ch string) string {
	t.Helper()
	at := time.Date(2026, 11, 21, 4, 0, 0, 0, time.UTC)
	lines := []recon.StatementLine{{Kind: recon.LinePayment, OrderNo: "X-1", ChannelTxnID: "T1", Amount: 1000, Fee: 6, Currency: "CNY", OccurredAt: at}}
	var buf bytes.Buffer
	var err error
	switch ch {
	case "ali":
		err = alipay.WriteBill(&buf, alipay.Bill{Account: "20880000000000000156", Day: "2026-11-21", Lines: lines, ExportedAt: at, TradeTotalDelta: 1})
	case "wx":
		err = wechatpay.WriteBill(&buf, wechatpay.Bill{AppID: "wx1", MchID: "1900000001", Lines: lines, SettlementDelta: 1})
	default:
		fmt.Fprintf(&buf, `{"object":"list","data":[{"id":"txn_1","object":"balance_transaction","amount":1000,"created":%d,"currency":"cny","fee":6,"net":999,"source":{"id":"ch_1","object":"charge","payment_intent":"pi_1"},"type":"charge"}],"has_more":false,"url":"/v1/balance_transactions"}`+"\n", at.Unix())
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
