package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/simulator"
)

// TestAlipayChannelReconciles runs `recon run` against the simulator's
// Alipay gateway over HTTP: the configured channel signs its requests with
// the app key file, verifies the answers with Alipay's public key file and
// commits what it learns.
func TestAlipayChannelReconciles(t *testing.T) {
	keys, files := channeltest.KeyFiles(t)
	sim := simulator.New(simulator.Config{Seed: 1})
	orders := simulator.NewOrders()
	srv := httptest.NewServer(sim.Server(orders, keys))
	defer srv.Close()

	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	order := func(no string, amount int64, b simulator.Behaviour) recon.Order {
		o := recon.Order{OrderNo: no, MerchantID: "m1", Channel: "ali", Amount: amount, Currency: "CNY",
			Status: recon.StatusPending, CreatedAt: created, UpdatedAt: created}
		orders.Add(o)
		sim.Set(no, b)
		return o
	}
	seed := []recon.Order{
		order("ali-paid", 8888, simulator.Behaviour{Status: recon.ChannelPaid}),
		order("ali-failed", 100, simulator.Behaviour{Status: recon.ChannelFailed}),
		order("ali-pending", 100, simulator.Behaviour{Status: recon.ChannelPending}),
		order("ali-unscanned", 100, simulator.Behaviour{Status: recon.ChannelNotFound}),
		order("ali-tampered", 100, simulator.Behaviour{Status: recon.ChannelPaid, Amount: 101}),
		order("ali-forged", 100, simulator.Behaviour{Status: recon.ChannelPaid, BadSignature: true}),
	}
	entry := fmt.Sprintf("  - {name: ali, kind: alipay, base_url: %q, app_id: %q, private_key_file: %q, public_key_file: %q, timeout: 5s}\n",
		srv.URL+simulator.AlipayGatewayPath, keys.AlipayAppID, files.AlipayAppPrivate, files.AlipayPublic)
	cfg, store := seedCLI(t, entry, seed)

	code, out, stderr := runCLI(t, nil, "run", "--output", "json", "--config", cfg)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json output %q: %v", out, err)
	}
	if res["scanned"] != float64(len(seed)) || res["paid"] != float64(1) || res["closed"] != float64(1) {
		t.Errorf("summary %s", out)
	}
	ctx := context.Background()
	for no, want := range map[string]recon.Status{
		"ali-paid": recon.StatusPaid, "ali-failed": recon.StatusClosed, "ali-pending": recon.StatusPending,
		"ali-unscanned": recon.StatusPending, "ali-tampered": recon.StatusPending, "ali-forged": recon.StatusPending,
	} {
		o, err := store.GetOrderByNo(ctx, no)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != want {
			t.Errorf("%s is %s, want %s", no, o.Status, want)
		}
		if no == "ali-forged" && !strings.Contains(o.LastQueryError, "signature") {
			t.Errorf("%s: last_query_error %q, want the bad signature", no, o.LastQueryError)
		}
	}
	if strings.Contains(stderr+out, "BEGIN") || strings.Contains(stderr+out, "MII") {
		t.Error("key material in the output")
	}
}

func TestAlipayChannelBadConfigExitsTwo(t *testing.T) {
	keys, files := channeltest.KeyFiles(t)
	bad := writeBadKeys(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alipay"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &keys.AlipayKey.PublicKey, keys.AlipayKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile := writeKeyFile(t, bad.Dir, "alipayCertPublicKey_RSA2.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}))

	keysOf := func(priv, pub string) string {
		return fmt.Sprintf("private_key_file: %q, public_key_file: %q", priv, pub)
	}
	good := keysOf(files.AlipayAppPrivate, files.AlipayPublic)
	for _, tc := range []struct {
		name, entry string
		key, says   string // the key the message must name, and what it must say
	}{
		{"missing private key file", "app_id: '1', " + keysOf(bad.Missing, files.AlipayPublic), "private_key_file", "no such file"},
		{"missing public key file", "app_id: '1', " + keysOf(files.AlipayAppPrivate, bad.Missing), "public_key_file", "no such file"},
		{"unreadable private key", "app_id: '1', " + keysOf(bad.Dir, files.AlipayPublic), "private_key_file", "is a directory"},
		{"garbage private key", "app_id: '1', " + keysOf(bad.Garbage, files.AlipayPublic), "private_key_file", "neither PEM nor base64"},
		{"EC private key", "app_id: '1', " + keysOf(bad.EC, files.AlipayPublic), "private_key_file", "not an RSA private key"},
		{"EC PKCS #8 private key", "app_id: '1', " + keysOf(bad.ECPKCS8, files.AlipayPublic), "private_key_file", "not an RSA private key (EC)"},
		{"public key as private key", "app_id: '1', " + keysOf(files.AlipayPublic, files.AlipayPublic), "private_key_file", "holds a public key"},
		{"private key as public key", "app_id: '1', " + keysOf(files.AlipayAppPrivate, files.AlipayAppPrivate), "public_key_file", "holds a private key"},
		{"EC public key", "app_id: '1', " + keysOf(files.AlipayAppPrivate, bad.ECPub), "public_key_file", "not an RSA public key"},
		{"certificate as public key", "app_id: '1', " + keysOf(files.AlipayAppPrivate, certFile), "public_key_file", "certificate"},
		{"no app_id", good, "app_id", "required"},
		{"no private_key_file", "app_id: '1', public_key_file: " + fmt.Sprintf("%q", files.AlipayPublic), "private_key_file", "required"},
		{"base_url not a URL", "app_id: '1', base_url: 'openapi.alipay.com/gateway.do', " + good, "base_url", "not an absolute http(s) URL"},
		{"negative timeout", "app_id: '1', timeout: -1s, " + good, "timeout", "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectChannelRefused(t, "ali", "alipay", tc.entry, tc.key, tc.says)
		})
	}
}

// TestAlipayChannelCloses: the builder's adapter has a close API, so
// close_on_expiry can close an expired order at Alipay. base_url may be left
// out (Alipay's production gateway).
func TestAlipayChannelCloses(t *testing.T) {
	keys, files := channeltest.KeyFiles(t)
	ch, err := buildAlipay(ChannelConfig{Name: "ali", Kind: "alipay", AppID: keys.AlipayAppID,
		PrivateKeyFile: files.AlipayAppPrivate, PublicKeyFile: files.AlipayPublic})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ch.(channel.Closer); !ok {
		t.Fatalf("%T cannot close orders", ch)
	}
}

// TestServeSettlesAlipayRefundNotifications: recon serve looks up the
// refund an Alipay refund notification names, through the channel's
// refund lookup, and answers "success" once that answer settled it; when
// the lookup fails it answers "fail" (Alipay retries) and the refund is
// due for the next pass.
func TestServeSettlesAlipayRefundNotifications(t *testing.T) {
	keys, files := channeltest.KeyFiles(t)
	sim := simulator.New(simulator.Config{Seed: 1})
	chOrders := simulator.NewOrders()
	srv := httptest.NewServer(sim.Server(chOrders, keys))
	defer srv.Close()
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	o := cliOrder("ali-rf-order", recon.StatusPaid, created)
	o.Channel = "ali"
	chOrders.Add(o)
	consoleAddr, cbAddr := freeAddr(t), freeAddr(t)
	cfg, store := seedCLI(t, fmt.Sprintf("  - {name: ali, kind: alipay, base_url: %q, app_id: %q, private_key_file: %q, public_key_file: %q, timeout: 5s}\n",
		srv.URL+simulator.AlipayGatewayPath, keys.AlipayAppID, files.AlipayAppPrivate, files.AlipayPublic)+
		fmt.Sprintf("metrics: {addr: ''}\ncallbacks: {addr: '%s'}\nconsole:\n  addr: '%s'\n"+
			"  auth: {trusted_proxies: [127.0.0.1/32], users: [{name: ann@example.com, role: admin}]}\n", cbAddr, consoleAddr),
		[]recon.Order{o})
	ctx := context.Background()
	paid, err := store.GetOrderByNo(ctx, o.OrderNo)
	if err != nil {
		t.Fatal(err)
	}
	var refunds []recon.Refund
	for no, b := range map[string]simulator.RefundBehaviour{
		"ali-rf-ok":   {Status: recon.RefundChannelSucceeded},
		"ali-rf-down": {Status: recon.RefundChannelSucceeded, PermanentError: true},
	} {
		r := recon.Refund{RefundNo: no, OrderID: paid.ID, OrderNo: o.OrderNo, MerchantID: "m1", Channel: "ali", Amount: 234, Currency: "CNY",
			Status: recon.RefundPending, CreatedAt: created, UpdatedAt: created}
		refunds = append(refunds, r)
		chOrders.AddRefund(r)
		sim.SetRefund(no, b)
	}
	if err := store.InsertRefunds(ctx, refunds); err != nil {
		t.Fatal(err)
	}
	logs, cancel, done := startServe(t, cfg)
	post := func(eventID, refundNo string) (int, string) {
		t.Helper()
		form := url.Values{"notify_time": {"2024-03-02 10:00:09"}, "notify_type": {"trade_status_sync"}, "notify_id": {eventID},
			"app_id": {keys.AlipayAppID}, "trade_no": {"2024030122001400000000000077"}, "out_trade_no": {o.OrderNo},
			"out_biz_no": {refundNo}, "trade_status": {"TRADE_SUCCESS"}, "total_amount": {"12.34"}, "refund_fee": {"4.68"}}
		if err := alipay.SignNotification(keys.AlipayKey, form); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+cbAddr+"/callbacks/ali", "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	refund := func(no string) recon.Refund {
		t.Helper()
		r, err := store.GetRefundByNo(ctx, no)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if code, body := post("ali-n1", "ali-rf-ok"); code != 200 || body != alipay.NotifyAnswer {
		t.Fatalf("confirmed refund: %d %q", code, body)
	}
	if r := refund("ali-rf-ok"); r.Status != recon.RefundSucceeded {
		t.Fatalf("refund %s, want SUCCEEDED", r.Status)
	}
	if code, body := post("ali-n2", "ali-rf-down"); code != 400 || body != "fail" {
		t.Fatalf("failed lookup: %d %q", code, body)
	}
	if r := refund("ali-rf-down"); r.Status != recon.RefundPending || r.LastQueryError == "" {
		t.Fatalf("refund %s (%q), want PENDING with the lookup's failure", r.Status, r.LastQueryError)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve stopped with %d: %s", code, logs.buf.String())
	}
}
