package alipay_test

import (
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/simulator"
)

// newContractClient builds the adapter from the key files, as recon does.
func newContractClient(t testing.TB, env channeltest.Env) *alipay.Client {
	t.Helper()
	priv, err := channel.ReadRSAPrivateKey(env.KeyFiles.AlipayAppPrivate)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := alipay.ReadPublicKey(env.KeyFiles.AlipayPublic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := alipay.New(alipay.Config{Name: "ali", BaseURL: env.BaseURL + simulator.AlipayGatewayPath,
		AppID: env.Keys.AlipayAppID, PrivateKey: priv, AlipayPublicKey: pub, Timeout: env.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestContract(t *testing.T) {
	channeltest.Run(t, channeltest.Harness{
		New:    func(t testing.TB, env channeltest.Env) channel.Lookup { return newContractClient(t, env) },
		Signed: true,
		Closes: true,
		// Alipay has no failed state: the simulator answers a failed
		// payment's trade as TRADE_CLOSED.
		Statuses: map[recon.ChannelStatus]recon.ChannelStatus{recon.ChannelFailed: recon.ChannelClosed},
		// The refund query tells only REFUND_SUCCESS; a refund still
		// processing, failed or in trouble is "not received".
		Refunds: true,
		RefundStatuses: map[recon.RefundChannelStatus]recon.RefundChannelStatus{
			recon.RefundChannelPending:  recon.RefundChannelNotFound,
			recon.RefundChannelFailed:   recon.RefundChannelNotFound,
			recon.RefundChannelAbnormal: recon.RefundChannelNotFound,
		},
	})
}
