package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
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
