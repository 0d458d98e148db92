package alipay

import (
	"crypto/rsa"
	"fmt"

	"github.com/recon-dev/recon/channel"
)

// ReadPrivateKey reads the app's RSA private key from path: a PEM file,
// PKCS #1 ("RSA PRIVATE KEY") or PKCS #8 ("PRIVATE KEY"), or the bare base64
// DER that Alipay's key tool writes. Errors are channel.ReadRSAPrivateKey's:
// they name the file, never the key.
func ReadPrivateKey(path string) (*rsa.PrivateKey, error) {
	return channel.ReadRSAPrivateKey(path)
}

// ReadPublicKey reads Alipay's RSA public key from path: a PEM file, PKIX
// ("PUBLIC KEY") or PKCS #1 ("RSA PUBLIC KEY"), or the bare base64 DER that
// Alipay's console shows. A certificate is refused: recon speaks Alipay's
// public-key mode, not its certificate mode.
func ReadPublicKey(path string) (*rsa.PublicKey, error) {
	key, certSerial, err := channel.ReadRSAPublicKey(path)
	if err != nil {
		return nil, err
	}
	if certSerial != "" {
		return nil, fmt.Errorf("%s: holds a certificate: recon speaks Alipay's public-key mode, give Alipay's public key", path)
	}
	return key, nil
}
