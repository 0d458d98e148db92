package main

import (
	"fmt"

	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
)

func init() {
	channelBuilders["alipay"] = buildAlipay
}

// buildAlipay reads the channel's key files and builds the adapter. Every
// error starts with the key it is about (private_key_file, public_key_file,
// base_url, app_id, pid, timeout) and never quotes a key.
func buildAlipay(cc ChannelConfig) (channel.Lookup, error) {
	priv, err := channel.ReadRSAPrivateKey(cc.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("private_key_file: %w", err)
	}
	pub, err := alipay.ReadPublicKey(cc.PublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("public_key_file: %w", err)
	}
	c, err := alipay.New(alipay.Config{Name: cc.Name, BaseURL: cc.BaseURL, AppID: cc.AppID,
		PrivateKey: priv, AlipayPublicKey: pub, Timeout: cc.Timeout.D(), PID: cc.PID, Insecure: cc.Insecure})
	if err != nil {
		return nil, err
	}
	return c, nil
}
