package simulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/stripe"
	"github.com/recon-dev/recon/channel/wechatpay"
)

// statementClients are the real adapters pointed at a simulator server.
func statementClients(t *testing.T, url string, keys Keys, zone *time.Location) map[string]channel.Statements {
	t.Helper()
	ali, err := alipay.New(alipay.Config{BaseURL: url + AlipayGatewayPath, AppID: keys.AlipayAppID,
		PrivateKey: keys.AlipayAppKey, AlipayPublicKey: &keys.AlipayKey.PublicKey, Insecure: true}) // the test server speaks plain http
	if err != nil {
		t.Fatal(err)
	}
	wx, err := wechatpay.New(wechatpay.Config{BaseURL: url, MchID: keys.WechatMchID, CertSerial: keys.WechatMerchantSerial,
		PrivateKey: keys.WechatMerchantKey, PublicKey: &keys.WechatPlatformKey.PublicKey, PublicKeyID: keys.WechatPlatformKeyID, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := stripe.New(stripe.Config{BaseURL: url, APIKey: keys.StripeAPIKey, StatementZone: zone})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]channel.Statements{"alipay": ali, "wechatpay": wx, "stripe": st}
}

// summary is what every format keeps of a line: the business content.
func summary(l recon.StatementLine, kind string) string {
	txn := l.ChannelTxnID
	switch kind {
	case "stripe":
		txn = "pi_" + txn
	case "alipay":
		l.Fee = -l.Fee // Alipay writes fees as negative amounts
	}
	return fmt.Sprintf("%s %s %s %s %d %d %s", l.Kind, l.OrderNo, txn, l.RefundNo, l.Amount, l.Fee, l.OccurredAt.UTC().Format(time.RFC3339))
}

func TestStatementFormatsCarryTheSameDay(t *testing.T) {
	china, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	sim := New(Config{Seed: 11, PaidRate: 0.7, FeeRate: 0.006})
	src := dayOrders(china)
	sim.SetStatementOrders(src)
	srv := httptest.NewServer(sim.Server(src, keys))
	defer srv.Close()
	const day = "2024-03-01"
	want, err := sim.StatementLines(context.Background(), day, china)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 50 {
		t.Fatalf("only %d lines", len(want))
	}
	for kind, c := range statementClients(t, srv.URL, keys, china) {
		t.Run(kind, func(t *testing.T) {
			var file bytes.Buffer
			if _, err := c.FetchStatement(context.Background(), day, &file); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			var n int
			_, err := c.ParseStatement(bytes.NewReader(file.Bytes()), int64(file.Len()), day, china, func(l recon.StatementLine) error {
				if kind == "stripe" {
					l.RefundNo = strings.TrimPrefix(l.RefundNo, "re_")
				}
				got[summary(l, "")]++
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != len(want) {
				t.Errorf("%d lines, want %d", n, len(want))
			}
			for _, l := range want {
				if got[summary(l, kind)] == 0 {
					t.Errorf("missing %s", summary(l, kind))
				}
				got[summary(l, kind)]--
			}
		})
	}
}

func TestStatementFormatsWithoutASource(t *testing.T) {
	keys, err := TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	sim := New(Config{Seed: 1})
	srv := httptest.NewServer(sim.Server(NewOrders(), keys))
	defer srv.Close()
	for kind, c := range statementClients(t, srv.URL, keys, time.UTC) {
		if kind == "stripe" {
			continue // Stripe has no "no statement": an empty list is a day without business
		}
		t.Run(kind, func(t *testing.T) {
			_, err := c.FetchStatement(context.Background(), "2024-03-01", &bytes.Buffer{})
			if !errors.Is(err, channel.ErrNoStatement) {
				t.Fatalf("error %v, want ErrNoStatement", err)
			}
		})
	}
}

// TestStatementDownloadsNeedTheirToken: only the URLs the bill APIs hand
// out download a bill.
func TestStatementDownloadsNeedTheirToken(t *testing.T) {
	keys, err := TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	sim := New(Config{Seed: 1})
	src := NewOrders()
	sim.SetStatementOrders(src)
	srv := httptest.NewServer(sim.Server(src, keys))
	defer srv.Close()
	resp, err := http.Get(srv.URL + AlipayBillPath + "?bizType=trade&bizDates=20240301&token=guessed")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("Alipay bill with a guessed token: HTTP %d", resp.StatusCode)
	}
	e := &wxEnv{t: t, sim: sim, keys: keys, url: srv.URL}
	if r := e.do(http.MethodGet, WechatBillDownloadPath+"?token=guessed", nil, wxAuth{}); r.status != http.StatusBadRequest {
		t.Errorf("WeChat Pay bill with a guessed token: HTTP %d", r.status)
	}
	if r := e.do(http.MethodGet, WechatBillDownloadPath+"?token=guessed", nil, wxAuth{none: true}); r.status != http.StatusUnauthorized {
		t.Errorf("WeChat Pay download without a signature: HTTP %d", r.status)
	}
}
