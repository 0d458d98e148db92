package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/wechatpay"
)

func init() {
	channelBuilders["wechatpay"] = buildWechatPay
}

// buildWechatPay reads the channel's key files and builds the adapter. Every
// error names the key it is about (private_key_file, public_key_file,
// public_key_id, base_url, mch_id, cert_serial, timeout) and never quotes a
// key.
//
// public_key_file is the WeChat Pay public key, whose ID (PUB_KEY_ID_…) must
// be given as public_key_id; or a platform certificate, whose serial number
// is what the answers announce, so public_key_id may then be left out.
func buildWechatPay(cc ChannelConfig) (channel.Lookup, error) {
	priv, err := channel.ReadRSAPrivateKey(cc.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("private_key_file: %w", err)
	}
	pub, certSerial, err := channel.ReadRSAPublicKey(cc.PublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("public_key_file: %w", err)
	}
	keyID := strings.TrimSpace(cc.PublicKeyID)
	if keyID == "" {
		if certSerial == "" {
			return nil, errors.New("public_key_id: is required for kind wechatpay with a WeChat Pay public key (its ID, PUB_KEY_ID_..., is shown next to the key on the merchant platform)")
		}
		keyID = certSerial
	}
	c, err := wechatpay.New(wechatpay.Config{Name: cc.Name, BaseURL: cc.BaseURL, MchID: cc.MchID, CertSerial: cc.CertSerial,
		PrivateKey: priv, PublicKey: pub, PublicKeyID: keyID, Timeout: cc.Timeout.D(), Insecure: cc.Insecure})
	if err != nil {
		return nil, err
	}
	return c, nil
}
