package alipay_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
)

// TestKeyFormats reads the key files Alipay's tools and OpenSSL write: PEM
// in PKCS #1 or PKCS #8 (private) and PKIX or PKCS #1 (public), and the bare
// base64 the Alipay console shows, wrapped or not.
func TestKeyFormats(t *testing.T) {
	t.Parallel()
	k := keys(t)
	priv, pub := k.AlipayAppKey, &k.AlipayAppKey.PublicKey
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(priv)
	pkix, _ := x509.MarshalPKIXPublicKey(pub)
	wrap := func(b []byte) string {
		s := base64.StdEncoding.EncodeToString(b)
		var lines []string
		for len(s) > 64 {
			lines, s = append(lines, s[:64]), s[64:]
		}
		return strings.Join(append(lines, s), "\r\n") + "\n"
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, body := range map[string]string{
		"pkcs1.pem":   string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})),
		"pkcs8.pem":   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
		"pkcs8.txt":   base64.StdEncoding.EncodeToString(pkcs8),
		"pkcs1.txt":   wrap(x509.MarshalPKCS1PrivateKey(priv)),
		"comment.pem": "Alipay app key\n" + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
	} {
		got, err := channel.ReadRSAPrivateKey(write(name, body))
		if err != nil || !got.Equal(priv) {
			t.Errorf("ReadRSAPrivateKey(%s) = %v", name, err)
		}
	}
	for name, body := range map[string]string{
		"pkix.pem":      string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})),
		"pkcs1_pub.pem": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})),
		"pkix.txt":      base64.StdEncoding.EncodeToString(pkix) + "\n",
		"pkcs1_pub.txt": wrap(x509.MarshalPKCS1PublicKey(pub)),
	} {
		got, err := alipay.ReadPublicKey(write(name, body))
		if err != nil || !got.Equal(pub) {
			t.Errorf("ReadPublicKey(%s) = %v", name, err)
		}
	}

	for name, tc := range map[string]struct {
		body, want string
		public     bool
	}{
		"empty":               {body: " \n", want: "empty key file"},
		"encrypted":           {body: string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})), want: "encrypted"},
		"bad DER":             {body: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}})), want: "not a PKCS #1 or PKCS #8 private key"},
		"bare public":         {body: base64.StdEncoding.EncodeToString(pkix), want: "holds a public key"},
		"bare private":        {body: base64.StdEncoding.EncodeToString(pkcs8), want: "holds a private key", public: true},
		"bad public DER":      {body: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}})), want: "not a PKIX or PKCS #1 public key", public: true},
		"bad PKCS #1 public":  {body: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte{1, 2}})), want: "not a PKCS #1 public key", public: true},
		"public key garbage":  {body: "%%%", want: "neither PEM nor base64", public: true},
		"private key garbage": {body: "-----BEGIN", want: "neither PEM nor base64"},
	} {
		p := write(strings.ReplaceAll(name, " ", "_"), tc.body)
		var err error
		if tc.public {
			_, err = alipay.ReadPublicKey(p)
		} else {
			_, err = channel.ReadRSAPrivateKey(p)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", name, err, tc.want)
		}
	}
}
