package channel

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
	"strings"
)

// ReadRSAPrivateKey reads an RSA private key from path: a PEM file, PKCS #1
// ("RSA PRIVATE KEY") or PKCS #8 ("PRIVATE KEY"), or the bare base64 DER
// some providers' key tools write. Text before a PEM block is skipped.
//
// Errors name the file and what is wrong with it, never the key: an
// unreadable file gives the *fs.PathError, a file holding something else
// (a public key, a certificate, an EC or encrypted key, garbage) an error
// saying so, prefixed with path.
func ReadRSAPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err // *fs.PathError names the file and the reason
	}
	k, err := ParseRSAPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ReadRSAPublicKey reads an RSA public key from path: a PEM file, PKIX
// ("PUBLIC KEY"), PKCS #1 ("RSA PUBLIC KEY") or an X.509 certificate
// ("CERTIFICATE"), or the bare base64 DER of a PKIX or PKCS #1 key. For a
// certificate, certSerial is its serial number in upper-case hex (what
// answers signed with it announce); for a bare key it is "". Errors are
// like ReadRSAPrivateKey's.
func ReadRSAPublicKey(path string) (key *rsa.PublicKey, certSerial string, err error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, "", err
	}
	key, certSerial, err = ParseRSAPublicKey(b)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return key, certSerial, nil
}

// readKeyFile reads a key file. A path that is itself a key (a whole PEM
// block, or a long base64 string: an environment variable holding the key
// given where its file is expected) is refused without being echoed, since
// every error about a path quotes it.
func readKeyFile(path string) ([]byte, error) {
	if what := keyMaterial(path); what != "" {
		return nil, fmt.Errorf("holds %s, not a file path (give the path of a file that holds the key)", what)
	}
	return os.ReadFile(path)
}

// keyMaterial says what key material s holds, or "" when it may be a path.
func keyMaterial(s string) string {
	switch {
	case strings.Contains(s, "-----BEGIN") && strings.Contains(s, "KEY-----"):
		return "a PEM key"
	case strings.Contains(s, "-----BEGIN"):
		return "a PEM block"
	case strings.ContainsAny(s, "\r\n"):
		return "several lines"
	case len(s) >= 64 && !strings.ContainsAny(s, ".\\") && strings.Trim(s, base64Chars) == "":
		return "what looks like a base64 key"
	}
	return ""
}

const base64Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_"

// ParseRSAPrivateKey parses the contents of a private key file (see
// ReadRSAPrivateKey).
func ParseRSAPrivateKey(data []byte) (*rsa.PrivateKey, error) {
	raw, typ, err := keyDER(data)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return nil, errors.New("holds a public key, not a private key")
	case "CERTIFICATE":
		return nil, errors.New("holds a certificate, not a private key")
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("holds an encrypted private key, which is not supported: decrypt it first")
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

// ParseRSAPublicKey parses the contents of a public key or certificate file
// (see ReadRSAPublicKey).
func ParseRSAPublicKey(data []byte) (key *rsa.PublicKey, certSerial string, err error) {
	raw, typ, err := keyDER(data)
	if err != nil {
		return nil, "", err
	}
	var k any
	switch typ {
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, "", errors.New("holds a private key, not a public key")
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, "", errors.New("not an X.509 certificate")
		}
		k, certSerial = cert.PublicKey, fmt.Sprintf("%X", cert.SerialNumber.Bytes())
	case "RSA PUBLIC KEY":
		if k, err = x509.ParsePKCS1PublicKey(raw); err != nil {
			return nil, "", errors.New("not a PKCS #1 public key")
		}
	default:
		if k, err = x509.ParsePKIXPublicKey(raw); err != nil {
			if k, err = x509.ParsePKCS1PublicKey(raw); err != nil {
				if _, perr := x509.ParsePKCS8PrivateKey(raw); perr == nil {
					return nil, "", errors.New("holds a private key, not a public key")
				}
				return nil, "", errors.New("not a PKIX or PKCS #1 public key")
			}
		}
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, "", fmt.Errorf("not an RSA public key (%s)", keyKind(k))
	}
	return rk, certSerial, nil
}

// keyDER returns the DER bytes of a key file and its PEM type ("" for bare
// base64). Its errors never quote the file: it may hold a key.
func keyDER(data []byte) (der []byte, pemType string, err error) {
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
