package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badKeys are key files a channel must refuse, in Dir: EC keys (SEC 1,
// PKCS #8 and PKIX), a file that holds no key, and the name of a missing
// file. Dir itself is a directory, which cannot be read as a key.
type badKeys struct {
	Dir, EC, ECPKCS8, ECPub, Garbage, Missing string
}

// writeBadKeys writes the bad key files into a temporary directory.
func writeBadKeys(t *testing.T) badKeys {
	t.Helper()
	k := badKeys{Dir: t.TempDir()}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	k.EC = writeKeyFile(t, k.Dir, "ec.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	k.ECPKCS8 = writeKeyFile(t, k.Dir, "ec8.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecPKCS8}))
	k.ECPub = writeKeyFile(t, k.Dir, "ec_pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPub}))
	k.Garbage = writeKeyFile(t, k.Dir, "garbage.pem", []byte("this is not a key\n"))
	k.Missing = filepath.Join(k.Dir, "missing.pem")
	return k
}

func writeKeyFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// expectChannelRefused runs `recon run` with one channel, named name, of
// kind and the given entry keys: it must exit 2 with a message that names
// the config file, the channel and key and says says, and quotes no key
// material.
func expectChannelRefused(t *testing.T, name, kind, entry, key, says string) {
	t.Helper()
	p := writeConfig(t, fmt.Sprintf("database: {driver: sqlite, dsn: %q}\nchannels:\n  - {name: %s, kind: %s, %s}\n",
		filepath.Join(t.TempDir(), "r.db"), name, kind, entry))
	code, _, stderr := runCLI(t, nil, "run", "--config", p)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d: %s", code, exitUsage, stderr)
	}
	for _, want := range []string{p, "channels[0] (" + name + ")", key, says} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not say %q", stderr, want)
		}
	}
	if strings.Contains(stderr, "MII") || strings.Contains(stderr, "BEGIN") {
		t.Errorf("stderr %q quotes key material", stderr)
	}
}
