package wechatpay

import (
	"crypto/rsa"

	"github.com/recon-dev/recon/channel"
)

// LoadPrivateKey reads the merchant's API private key (apiclient_key.pem:
// PKCS #8, or PKCS #1) from path. Errors are channel.ReadRSAPrivateKey's:
// they name the file and what is wrong with it, never the key.
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	return channel.ReadRSAPrivateKey(path)
}

// LoadPublicKey reads the WeChat Pay public key (pub_key.pem, PKIX or
// PKCS #1) or a platform certificate from path. For a certificate it also
// returns the certificate's serial number in upper-case hex, which is what
// responses signed with it announce in Wechatpay-Serial; for a bare key
// certSerial is "".
func LoadPublicKey(path string) (key *rsa.PublicKey, certSerial string, err error) {
	return channel.ReadRSAPublicKey(path)
}
