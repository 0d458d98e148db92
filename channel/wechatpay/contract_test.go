package wechatpay_test

import (
	"testing"

	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/wechatpay"
)

func TestContract(t *testing.T) {
	channeltest.Run(t, channeltest.Harness{
		Signed:      true,
		Timestamped: true,
		Closes:      true,
		Refunds:     true,
		New: func(t testing.TB, env channeltest.Env) channel.Lookup {
			key, err := channel.ReadRSAPrivateKey(env.KeyFiles.WechatMerchantPrivate)
			if err != nil {
				t.Fatal(err)
			}
			pub, _, err := channel.ReadRSAPublicKey(env.KeyFiles.WechatPlatformPublic)
			if err != nil {
				t.Fatal(err)
			}
			c, err := wechatpay.New(wechatpay.Config{
				Name: "wx", BaseURL: env.BaseURL, MchID: env.Keys.WechatMchID,
				CertSerial: env.Keys.WechatMerchantSerial, PrivateKey: key,
				PublicKey: pub, PublicKeyID: env.Keys.WechatPlatformKeyID, Timeout: env.Timeout,
			})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}
