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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/simulator"
)

// wechatEntry is a channels entry of kind wechatpay named wx.
func wechatEntry(keys simulator.Keys, baseURL, privateKeyFile, publicKeyFile string) string {
	return fmt.Sprintf("base_url: %q, mch_id: %q, cert_serial: %q, private_key_file: %q, public_key_file: %q, public_key_id: %q",
		baseURL, keys.WechatMchID, keys.WechatMerchantSerial, privateKeyFile, publicKeyFile, keys.WechatPlatformKeyID)
}

// TestWechatPayChannelReconciles runs `recon run` against the simulator's
// WeChat Pay API over HTTP: the configured channel signs its requests with
// the merchant key file, verifies the answers with the WeChat Pay public key
// file and commits what it learns; forged and stale answers change nothing.
func TestWechatPayChannelReconciles(t *testing.T) {
	keys, files := channeltest.KeyFiles(t)
	sim := simulator.New(simulator.Config{Seed: 1})
	orders := simulator.NewOrders()
	srv := httptest.NewServer(sim.Server(orders, keys))
	defer srv.Close()

	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	order := func(no string, amount int64, b simulator.Behaviour) recon.Order {
		o := recon.Order{OrderNo: no, MerchantID: "m1", Channel: "wx", Amount: amount, Currency: "CNY",
			Status: recon.StatusPending, CreatedAt: created, UpdatedAt: created}
		orders.Add(o)
		sim.Set(no, b)
		return o
	}
	seed := []recon.Order{
		order("wx-paid", 8888, simulator.Behaviour{Status: recon.ChannelPaid}),
		order("wx-failed", 100, simulator.Behaviour{Status: recon.ChannelFailed}),
		order("wx-closed", 100, simulator.Behaviour{Status: recon.ChannelClosed}),
		order("wx-pending", 100, simulator.Behaviour{Status: recon.ChannelPending}),
		order("wx-unknown", 100, simulator.Behaviour{Status: recon.ChannelNotFound}),
		order("wx-tampered", 100, simulator.Behaviour{Status: recon.ChannelPaid, Amount: 101}),
		order("wx-forged", 100, simulator.Behaviour{Status: recon.ChannelPaid, BadSignature: true}),
		order("wx-stale", 100, simulator.Behaviour{Status: recon.ChannelPaid, StaleTimestamp: true}),
	}
	entry := "  - {name: wx, kind: wechatpay, timeout: 5s, " + wechatEntry(keys, srv.URL, files.WechatMerchantPrivate, files.WechatPlatformPublic) + "}\n"
	cfg, store := seedCLI(t, entry, seed)

	code, out, stderr := runCLI(t, nil, "run", "--output", "json", "--config", cfg)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json output %q: %v", out, err)
	}
	if res["scanned"] != float64(len(seed)) || res["paid"] != float64(1) || res["failed"] != float64(1) || res["closed"] != float64(1) {
		t.Errorf("summary %s", out)
	}
	ctx := context.Background()
	for no, want := range map[string]struct {
		status recon.Status
		err    string // in last_query_error
	}{
		"wx-paid": {recon.StatusPaid, ""}, "wx-failed": {recon.StatusFailed, ""}, "wx-closed": {recon.StatusClosed, ""},
		"wx-pending": {recon.StatusPending, ""}, "wx-unknown": {recon.StatusPending, ""}, "wx-tampered": {recon.StatusPending, ""},
		"wx-forged": {recon.StatusPending, "signature"}, "wx-stale": {recon.StatusPending, "stale Wechatpay-Timestamp"},
	} {
		o, err := store.GetOrderByNo(ctx, no)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != want.status {
			t.Errorf("%s is %s, want %s", no, o.Status, want.status)
		}
		if want.err != "" && !strings.Contains(o.LastQueryError, want.err) {
			t.Errorf("%s: last_query_error %q, want %q", no, o.LastQueryError, want.err)
		}
	}
	if strings.Contains(stderr+out, "BEGIN") || strings.Contains(stderr+out, "MII") {
		t.Error("key material in the output")
	}
}

func TestWechatPayChannelBadConfigExitsTwo(t *testing.T) {
	keys, files := channeltest.KeyFiles(t)
	bad := writeBadKeys(t)

	entry := func(priv, pub string) string { return wechatEntry(keys, "", priv, pub) }
	good := entry(files.WechatMerchantPrivate, files.WechatPlatformPublic)
	for _, tc := range []struct {
		name, entry string
		key, says   string // the key the message must name, and what it must say
	}{
		{"missing private key file", entry(bad.Missing, files.WechatPlatformPublic), "private_key_file", "no such file"},
		{"missing public key file", entry(files.WechatMerchantPrivate, bad.Missing), "public_key_file", "no such file"},
		{"unreadable private key", entry(bad.Dir, files.WechatPlatformPublic), "private_key_file", "is a directory"},
		{"garbage private key", entry(bad.Garbage, files.WechatPlatformPublic), "private_key_file", "neither PEM nor base64"},
		{"EC private key", entry(bad.EC, files.WechatPlatformPublic), "private_key_file", "not an RSA private key"},
		{"EC PKCS #8 private key", entry(bad.ECPKCS8, files.WechatPlatformPublic), "private_key_file", "not an RSA private key (EC)"},
		{"public key as private key", entry(files.WechatPlatformPublic, files.WechatPlatformPublic), "private_key_file", "not a private key"},
		{"private key as public key", entry(files.WechatMerchantPrivate, files.WechatPlatformPrivate), "public_key_file", "not a public key"},
		{"EC public key", entry(files.WechatMerchantPrivate, bad.ECPub), "public_key_file", "not an RSA public key"},
		{"no mch_id", strings.Replace(good, fmt.Sprintf("mch_id: %q", keys.WechatMchID), "mch_id: ''", 1), "mch_id", "required"},
		{"no cert_serial", strings.Replace(good, fmt.Sprintf("cert_serial: %q", keys.WechatMerchantSerial), "cert_serial: ''", 1), "cert_serial", "required"},
		{"no public_key_id", strings.Replace(good, fmt.Sprintf("public_key_id: %q", keys.WechatPlatformKeyID), "public_key_id: ''", 1), "public_key_id", "required"},
		{"no private_key_file", strings.Replace(good, fmt.Sprintf("private_key_file: %q", files.WechatMerchantPrivate), "private_key_file: ''", 1), "private_key_file", "required"},
		{"base_url not a URL", strings.Replace(good, `base_url: ""`, "base_url: 'api.mch.weixin.qq.com'", 1), "base_url", "not an absolute http(s) URL"},
		{"negative timeout", "timeout: -1s, " + good, "timeout", "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectChannelRefused(t, "wx", "wechatpay", tc.entry, tc.key, tc.says)
		})
	}
}

// TestWechatPayChannelBuilds: a valid entry builds an adapter that can close
// orders (for close_on_expiry), with base_url left out (WeChat Pay's
// production API); with a platform certificate as public_key_file,
// public_key_id defaults to the certificate's serial.
func TestWechatPayChannelBuilds(t *testing.T) {
	keys, files := channeltest.KeyFiles(t)
	cc := ChannelConfig{Name: "wx", Kind: "wechatpay", MchID: keys.WechatMchID, CertSerial: keys.WechatMerchantSerial,
		PrivateKeyFile: files.WechatMerchantPrivate, PublicKeyFile: files.WechatPlatformPublic, PublicKeyID: keys.WechatPlatformKeyID}
	ch, err := buildWechatPay(cc)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ch.(channel.Closer); !ok {
		t.Fatalf("%T cannot close orders", ch)
	}

	serial, _ := new(big.Int).SetString("5157F09EFDC096DE15EBE81A47057A7232F1B8E1", 16)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "Tenpay.com Root CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &keys.WechatPlatformKey.PublicKey, keys.WechatPlatformKey)
	if err != nil {
		t.Fatal(err)
	}
	cc.PublicKeyFile, cc.PublicKeyID = filepath.Join(t.TempDir(), "wechatpay_cert.pem"), ""
	if err := os.WriteFile(cc.PublicKeyFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := buildWechatPay(cc); err != nil {
		t.Errorf("platform certificate without public_key_id: %v", err)
	}
}
