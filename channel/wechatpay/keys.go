package wechatpay

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadPrivateKey reads the merchant's API private key (apiclient_key.pem:
// PKCS #8, or PKCS #1) from a PEM file. Errors name the file and what is
// wrong with it, never the key.
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError names the file and the reason
	}
	key, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// LoadPublicKey reads the WeChat Pay public key (pub_key.pem, PKIX or
// PKCS #1) or a platform certificate from a PEM file. For a certificate it
// also returns the certificate's serial number, which is what responses
// signed with it announce in Wechatpay-Serial.
func LoadPublicKey(path string) (key *rsa.PublicKey, certSerial string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	key, certSerial, err = ParsePublicKey(b)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return key, certSerial, nil
}

// ParsePrivateKey parses the first PEM block of b as an RSA private key.
func ParsePrivateKey(b []byte) (*rsa.PrivateKey, error) {
	blk, err := firstBlock(b)
	if err != nil {
		return nil, err
	}
	switch blk.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a PKCS #8 private key: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("not an RSA private key (it is %s)", algorithm(k))
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a PKCS #1 RSA private key: %w", err)
		}
		return k, nil
	case "EC PRIVATE KEY":
		return nil, errors.New("not an RSA private key (it is an EC key)")
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("an encrypted private key: decrypt it first")
	}
	return nil, fmt.Errorf("not a private key (the PEM block is a %s)", blk.Type)
}

// ParsePublicKey parses the first PEM block of b as an RSA public key or a
// certificate holding one; certSerial is the certificate's serial number in
// upper-case hex, or "" for a bare key.
func ParsePublicKey(b []byte) (key *rsa.PublicKey, certSerial string, err error) {
	blk, err := firstBlock(b)
	if err != nil {
		return nil, "", err
	}
	var k any
	switch blk.Type {
	case "PUBLIC KEY":
		if k, err = x509.ParsePKIXPublicKey(blk.Bytes); err != nil {
			return nil, "", fmt.Errorf("not a PKIX public key: %w", err)
		}
	case "RSA PUBLIC KEY":
		if k, err = x509.ParsePKCS1PublicKey(blk.Bytes); err != nil {
			return nil, "", fmt.Errorf("not a PKCS #1 RSA public key: %w", err)
		}
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("not an X.509 certificate: %w", err)
		}
		k, certSerial = cert.PublicKey, fmt.Sprintf("%X", cert.SerialNumber.Bytes())
	default:
		return nil, "", fmt.Errorf("not a public key or certificate (the PEM block is a %s)", blk.Type)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, "", fmt.Errorf("not an RSA public key (it is %s)", algorithm(k))
	}
	return rk, certSerial, nil
}

func firstBlock(b []byte) (*pem.Block, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	return blk, nil
}

// algorithm names a key's algorithm for an error.
func algorithm(k any) string {
	switch k.(type) {
	case *ecdsa.PrivateKey, *ecdsa.PublicKey:
		return "an ECDSA key"
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "an Ed25519 key"
	}
	return fmt.Sprintf("a %T", k)
}
