package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recon-dev/recon/channel/simulator"
)

// A key given where its file is expected (private_key_file: ${APP_KEY},
// with the key itself in the environment) is refused without printing it.
func TestKeyInsteadOfKeyFileIsNotEchoed(t *testing.T) {
	// Any RSA key will do: the simulator's, generated once per test binary.
	simKeys, err := simulator.TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	key := simKeys.AlipayAppKey
	der := x509.MarshalPKCS1PrivateKey(key)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}))
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemPub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	b64Key := base64.StdEncoding.EncodeToString(der)
	body := pemKey[len("-----BEGIN RSA PRIVATE KEY-----\n") : len("-----BEGIN RSA PRIVATE KEY-----\n")+40]
	keys := writeBadKeys(t)
	for _, tc := range []struct {
		name, kind, entry, key, env, says string
	}{
		{"ali", "alipay", "app_id: '1', private_key_file: '${APP_KEY}', public_key_file: " + keys.Missing,
			"private_key_file", pemKey, "holds a PEM key, not a file path"},
		{"ali", "alipay", "app_id: '1', private_key_file: '${APP_KEY}', public_key_file: " + keys.Missing,
			"private_key_file", b64Key, "holds what looks like a base64 key, not a file path"},
		{"wx", "wechatpay", "mch_id: '1', cert_serial: 'AB', private_key_file: '${APP_KEY}', public_key_file: " + keys.Missing,
			"private_key_file", pemKey, "holds a PEM key, not a file path"},
		{"wx", "wechatpay", "mch_id: '1', cert_serial: 'AB', private_key_file: " + keys.Missing + ", public_key_file: '${APP_KEY}'",
			"public_key_file", pemPub, "holds a PEM key, not a file path"},
	} {
		t.Run(tc.kind+"/"+tc.key, func(t *testing.T) {
			if tc.key == "public_key_file" {
				// The private key is read first: give a good one.
				tc.entry = strings.Replace(tc.entry, "private_key_file: "+keys.Missing,
					"private_key_file: "+writeKeyFile(t, t.TempDir(), "k.pem", []byte(pemKey)), 1)
			}
			p := writeConfig(t, fmt.Sprintf("database: {driver: sqlite, dsn: %q}\nchannels:\n  - {name: %s, kind: %s, %s}\n",
				filepath.Join(t.TempDir(), "r.db"), tc.name, tc.kind, tc.entry))
			code, out, stderr := runCLI(t, map[string]string{"APP_KEY": tc.env}, "run", "--config", p)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d: %s", code, exitUsage, stderr)
			}
			for _, want := range []string{"channels[0] (" + tc.name + ")", tc.key, tc.says} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q does not say %q", stderr, want)
				}
			}
			for _, secret := range []string{"BEGIN", body, b64Key[20:60], pemPub[30:70]} {
				if strings.Contains(out+stderr, secret) {
					t.Fatalf("output quotes the key (%q): %s", secret, stderr)
				}
			}
		})
	}
}

// A base_url with credentials but no scheme parses as an opaque URL; no
// message may print its password.
func TestBaseURLCredentialsAreNotEchoed(t *testing.T) {
	for _, kind := range []string{"httpjson", "stripe", "alipay", "wechatpay"} {
		for _, u := range []string{"user:hunter2@bank.example/api", "http//user:hunter2@x", "ftp://user:hunter2@x/y", "bank.example:hunter2@x"} {
			entry := "base_url: '" + u + "', secret: s, api_key: sk_test_x, app_id: '1', mch_id: '1', cert_serial: 'AB', private_key_file: /no/such, public_key_file: /no/such"
			p := writeConfig(t, fmt.Sprintf("database: {driver: sqlite, dsn: %q}\nchannels:\n  - {name: c, kind: %s, %s}\n",
				filepath.Join(t.TempDir(), "r.db"), kind, entry))
			code, out, stderr := runCLI(t, nil, "run", "--config", p)
			if code != exitUsage {
				t.Fatalf("%s %s: exit %d, want %d: %s", kind, u, code, exitUsage, stderr)
			}
			if strings.Contains(out+stderr, "hunter2") {
				t.Errorf("%s %s: the password is printed: %s", kind, u, stderr)
			}
		}
	}
}
