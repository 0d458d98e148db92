package alipay

import (
	"crypto/rsa"
	"fmt"

	"github.com/recon-dev/recon/channel"
)

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
