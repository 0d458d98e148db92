package stripe_test

import (
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/stripe"
)

func TestContract(t *testing.T) {
	channeltest.Run(t, channeltest.Harness{
		// Stripe answers are not signed: TLS and the secret key authenticate
		// them, and the adapter checks every body strictly instead.
		Signed: false,
		Closes: true,
		// Stripe looks intents up by id, which recon keeps as channel_txn_id.
		Order: func(o recon.Order) recon.Order {
			o.ChannelTxnID = "pi_" + o.OrderNo
			return o
		},
		// And refunds by their re_… id, channel_refund_id. Stripe has no
		// ABNORMAL: the simulator answers it as requires_action, pending.
		Refunds: true,
		Refund: func(r recon.Refund) recon.Refund {
			r.ChannelRefundID = "re_" + r.RefundNo
			return r
		},
		RefundStatuses: map[recon.RefundChannelStatus]recon.RefundChannelStatus{recon.RefundChannelAbnormal: recon.RefundChannelPending},
		New: func(t testing.TB, env channeltest.Env) channel.Lookup {
			c, err := stripe.New(stripe.Config{Name: "st", BaseURL: env.BaseURL, APIKey: env.Keys.StripeAPIKey, Timeout: env.Timeout})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}
