package channel_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon/channel"
)

// testKeyMaterial is what the key tests write: an RSA key in every encoding
// the readers take, and keys and files they must refuse.
type testKeyMaterial struct {
	rsa                                *rsa.PrivateKey
	pkcs1, pkcs8, pkix, pkcs1Pub, cert []byte // DER
	ecSEC1, ecPKCS8, ecPKIX, ecCert    []byte // DER
	ed25519PKCS8                       []byte // DER
}

func newTestKeyMaterial(t *testing.T) testKeyMaterial {
	t.Helper()
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := func(pub, priv any) []byte {
		// Serial 0x0ABC: the serial is printed byte by byte, so a leading
		// zero nibble stays.
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x0ABC), Subject: pkix.Name{CommonName: "platform"},
			NotBefore: time.Unix(1700000000, 0), NotAfter: time.Unix(1900000000, 0)}
		return must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv))
	}
	return testKeyMaterial{
		rsa:          rk,
		pkcs1:        x509.MarshalPKCS1PrivateKey(rk),
		pkcs8:        must(x509.MarshalPKCS8PrivateKey(rk)),
		pkix:         must(x509.MarshalPKIXPublicKey(&rk.PublicKey)),
		pkcs1Pub:     x509.MarshalPKCS1PublicKey(&rk.PublicKey),
		cert:         cert(&rk.PublicKey, rk),
		ecSEC1:       must(x509.MarshalECPrivateKey(ek)),
		ecPKCS8:      must(x509.MarshalPKCS8PrivateKey(ek)),
		ecPKIX:       must(x509.MarshalPKIXPublicKey(&ek.PublicKey)),
		ecCert:       cert(&ek.PublicKey, ek),
		ed25519PKCS8: must(x509.MarshalPKCS8PrivateKey(edk)),
	}
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// bare is der as the base64 text some consoles show, in lines of 64.
func bare(der []byte) string {
	s := base64.StdEncoding.EncodeToString(der)
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\r\n")
		s = s[64:]
	}
	return b.String() + s + "\n"
}

// writeKeyFile writes body to a fresh file and returns its path.
func writeKeyFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), strings.NewReplacer(" ", "_", "#", "").Replace(name)+".pem")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkRefusal checks that reading the key file p (holding body) was refused
// with an error that names p, says want, and quotes nothing of body: no PEM
// armour, no run of its base64.
func checkRefusal(t *testing.T, name, p, body, want string, took bool, err error) {
	t.Helper()
	if err == nil || took {
		t.Errorf("%s: taken (error %v), want an error saying %q", name, err, want)
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, p+": "+want) {
		t.Errorf("%s: error %q, want %q", name, msg, p+": "+want)
	}
	if strings.Contains(msg, "-----") || strings.Contains(msg, "MII") {
		t.Errorf("%s: error %q quotes key material", name, msg)
	}
	for _, f := range strings.Fields(body) {
		for i := 0; i+16 <= len(f); i += 8 {
			if strings.Contains(msg, f[i:i+16]) {
				t.Errorf("%s: error %q quotes the file (%q)", name, msg, f[i:i+16])
				return
			}
		}
	}
}

func TestReadRSAPrivateKey(t *testing.T) {
	t.Parallel()
	k := newTestKeyMaterial(t)
	for _, tc := range []struct {
		name, body string
		want       string // "" for the RSA key, else what the error says
	}{
		{"PKCS #1", pemOf("RSA PRIVATE KEY", k.pkcs1), ""},
		{"PKCS #8", pemOf("PRIVATE KEY", k.pkcs8), ""},
		{"PKCS #8 after a comment", "the app key\n" + pemOf("PRIVATE KEY", k.pkcs8), ""},
		{"bare base64 PKCS #8", bare(k.pkcs8), ""},
		{"bare base64 PKCS #1", bare(k.pkcs1), ""},
		{"EC", pemOf("EC PRIVATE KEY", k.ecSEC1), "not an RSA private key (EC)"},
		{"EC in PKCS #8", pemOf("PRIVATE KEY", k.ecPKCS8), "not an RSA private key (EC)"},
		{"Ed25519 in PKCS #8", pemOf("PRIVATE KEY", k.ed25519PKCS8), "not an RSA private key (Ed25519)"},
		{"PKIX public key", pemOf("PUBLIC KEY", k.pkix), "holds a public key, not a private key"},
		{"bare base64 public key", bare(k.pkix), "holds a public key, not a private key"},
		{"certificate", pemOf("CERTIFICATE", k.cert), "holds a certificate, not a private key"},
		{"encrypted", pemOf("ENCRYPTED PRIVATE KEY", k.pkcs8[:64]), "holds an encrypted private key"},
		{"bad DER", pemOf("PRIVATE KEY", k.pkcs8[:64]), "not a PKCS #1 or PKCS #8 private key"},
		{"garbage", "this is not a key\n", "neither PEM nor base64"},
		{"cut armour", "-----BEGIN PRIVATE KEY-----\n" + bare(k.pkcs8), "neither PEM nor base64"},
		{"empty", " \n", "empty key file"},
	} {
		p := writeKeyFile(t, tc.name, tc.body)
		got, err := channel.ReadRSAPrivateKey(p)
		if tc.want == "" {
			if err != nil || !got.Equal(k.rsa) {
				t.Errorf("%s: ReadRSAPrivateKey = %v", tc.name, err)
			}
			continue
		}
		checkRefusal(t, tc.name, p, tc.body, tc.want, got != nil, err)
	}
}

func TestReadRSAPublicKey(t *testing.T) {
	t.Parallel()
	k := newTestKeyMaterial(t)
	for _, tc := range []struct {
		name, body string
		serial     string // of a certificate
		want       string // "" for the RSA key, else what the error says
	}{
		{"PKIX", pemOf("PUBLIC KEY", k.pkix), "", ""},
		{"PKCS #1", pemOf("RSA PUBLIC KEY", k.pkcs1Pub), "", ""},
		{"bare base64 PKIX", bare(k.pkix), "", ""},
		{"bare base64 PKCS #1", bare(k.pkcs1Pub), "", ""},
		{"PKCS #1 labelled PUBLIC KEY", pemOf("PUBLIC KEY", k.pkcs1Pub), "", ""},
		{"certificate", pemOf("CERTIFICATE", k.cert), "0ABC", ""},
		{"EC", pemOf("PUBLIC KEY", k.ecPKIX), "", "not an RSA public key (EC)"},
		{"EC certificate", pemOf("CERTIFICATE", k.ecCert), "", "not an RSA public key (EC)"},
		{"PKCS #8 private key", pemOf("PRIVATE KEY", k.pkcs8), "", "holds a private key, not a public key"},
		{"PKCS #1 private key", pemOf("RSA PRIVATE KEY", k.pkcs1), "", "holds a private key, not a public key"},
		{"bare base64 private key", bare(k.pkcs8), "", "holds a private key, not a public key"},
		{"bad certificate", pemOf("CERTIFICATE", k.cert[:64]), "", "not an X.509 certificate"},
		{"bad PKCS #1", pemOf("RSA PUBLIC KEY", k.pkcs1Pub[:64]), "", "not a PKCS #1 public key"},
		{"bad PKIX", pemOf("PUBLIC KEY", k.pkix[:64]), "", "not a PKIX or PKCS #1 public key"},
		{"garbage", "%%%", "", "neither PEM nor base64"},
		{"empty", "", "", "empty key file"},
	} {
		p := writeKeyFile(t, tc.name, tc.body)
		got, serial, err := channel.ReadRSAPublicKey(p)
		if tc.want == "" {
			if err != nil || !got.Equal(&k.rsa.PublicKey) || serial != tc.serial {
				t.Errorf("%s: ReadRSAPublicKey = serial %q, %v; want serial %q", tc.name, serial, err, tc.serial)
			}
			continue
		}
		checkRefusal(t, tc.name, p, tc.body, tc.want, got != nil || serial != "", err)
	}
}

func TestReadKeyMissingFileNamesThePath(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "apiclient_key.pem")
	_, err := channel.ReadRSAPrivateKey(p)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadRSAPrivateKey(missing) = %v, want one naming %s", err, p)
	}
	_, _, err = channel.ReadRSAPublicKey(p)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadRSAPublicKey(missing) = %v, want one naming %s", err, p)
	}
}

// The Parse variants say what is wrong without a path, for callers that
// have the bytes from elsewhere.
func TestParseRSAKeysNameNoPath(t *testing.T) {
	t.Parallel()
	k := newTestKeyMaterial(t)
	if got, err := channel.ParseRSAPrivateKey([]byte(pemOf("PRIVATE KEY", k.pkcs8))); err != nil || !got.Equal(k.rsa) {
		t.Errorf("ParseRSAPrivateKey(PKCS #8) = %v", err)
	}
	if _, err := channel.ParseRSAPrivateKey([]byte("garbage")); err == nil || err.Error() != "neither PEM nor base64" {
		t.Errorf("ParseRSAPrivateKey(garbage) = %v", err)
	}
	if got, serial, err := channel.ParseRSAPublicKey([]byte(pemOf("CERTIFICATE", k.cert))); err != nil || !got.Equal(&k.rsa.PublicKey) || serial != "0ABC" {
		t.Errorf("ParseRSAPublicKey(certificate) = %q, %v", serial, err)
	}
	if _, _, err := channel.ParseRSAPublicKey([]byte(pemOf("PUBLIC KEY", k.ecPKIX))); err == nil || err.Error() != "not an RSA public key (EC)" {
		t.Errorf("ParseRSAPublicKey(EC) = %v", err)
	}
}
