package alipay

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ReadPrivateKey reads the app's RSA private key from path: a PEM file,
// PKCS #1 ("RSA PRIVATE KEY") or PKCS #8 ("PRIVATE KEY"), or the bare base64
// DER that Alipay's key tool writes.
func ReadPrivateKey(path string) (*rsa.PrivateKey, error) {
	return readKey(path, ParsePrivateKey)
}

// ReadPublicKey reads Alipay's RSA public key from path: a PEM file, PKIX
// ("PUBLIC KEY") or PKCS #1 ("RSA PUBLIC KEY"), or the bare base64 DER that
// Alipay's console shows.
func ReadPublicKey(path string) (*rsa.PublicKey, error) {
	return readKey(path, ParsePublicKey)
}

// readKey reads path and parses it; errors name the file and what is wrong,
// never the key (an unreadable file's *fs.PathError names both).
func readKey[K any](path string, parse func([]byte) (K, error)) (K, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var zero K
		return zero, err
	}
	k, err := parse(b)
	if err != nil {
		return k, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// der returns the DER bytes of a key file and its PEM type ("" for bare
// base64).
func der(data []byte) ([]byte, string, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		return blk.Bytes, blk.Type, nil
	}
	compact := bytes.Join(bytes.Fields(data), nil)
	if len(compact) == 0 {
		return nil, "", errors.New("empty key file")
	}
	raw, err := base64.StdEncoding.DecodeString(string(compact))
	if err != nil {
		return nil, "", errors.New("neither PEM nor base64")
	}
	return raw, "", nil
}

// ParsePrivateKey parses an RSA private key (see ReadPrivateKey).
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	raw, typ, err := der(data)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
		return nil, fmt.Errorf("holds a %s, not a private key", pemName(typ))
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("encrypted private keys are not supported")
	case "EC PRIVATE KEY":
		return nil, errors.New("not an RSA private key (EC)")
	}
	if k, err := x509.ParsePKCS1PrivateKey(raw); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(raw)
	if err != nil {
		if _, perr := x509.ParsePKIXPublicKey(raw); perr == nil {
			return nil, errors.New("holds a public key, not a private key")
		}
		return nil, errors.New("not a PKCS #1 or PKCS #8 private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("not an RSA private key (%s)", keyKind(k))
	}
	return rk, nil
}

// ParsePublicKey parses an RSA public key (see ReadPublicKey).
func ParsePublicKey(data []byte) (*rsa.PublicKey, error) {
	raw, typ, err := der(data)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("holds a private key, not Alipay's public key")
	case "CERTIFICATE":
		return nil, errors.New("holds a certificate: recon speaks Alipay's public-key mode, give Alipay's public key")
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(raw)
		if err != nil {
			return nil, errors.New("not a PKCS #1 public key")
		}
		return k, nil
	}
	k, err := x509.ParsePKIXPublicKey(raw)
	if err != nil {
		if k, err := x509.ParsePKCS1PublicKey(raw); err == nil {
			return k, nil
		}
		if _, perr := x509.ParsePKCS8PrivateKey(raw); perr == nil {
			return nil, errors.New("holds a private key, not Alipay's public key")
		}
		return nil, errors.New("not a PKIX or PKCS #1 public key")
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("not an RSA public key (%s)", keyKind(k))
	}
	return rk, nil
}

func pemName(typ string) string {
	if typ == "CERTIFICATE" {
		return "certificate"
	}
	return "public key"
}

// keyKind names a key's algorithm for an error without printing the key.
func keyKind(k any) string {
	switch k.(type) {
	case *ecdsa.PrivateKey, *ecdsa.PublicKey, *ecdh.PrivateKey, *ecdh.PublicKey:
		return "EC"
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}
