package simulator_test

import (
	"context"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/simulator"
)

// inProcess is the in-process simulator with the per-call timeout a network
// adapter would apply.
type inProcess struct {
	sim *simulator.Sim
	env channeltest.Env
}

func (c inProcess) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.env.Timeout)
	defer cancel()
	return c.sim.Lookup(ctx, o)
}

func (c inProcess) LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	ctx, cancel := context.WithTimeout(ctx, c.env.Timeout)
	defer cancel()
	return c.sim.LookupRefund(ctx, r)
}

func (c inProcess) CloseOrder(ctx context.Context, o recon.Order) error {
	return c.sim.CloseOrder(ctx, o)
}

// TestContract runs the contract suite against the in-process simulator: the
// channel the demo and the tests use behaves like every real adapter.
func TestContract(t *testing.T) {
	channeltest.Run(t, channeltest.Harness{
		Signed: true, Closes: true, Refunds: true,
		New: func(t testing.TB, env channeltest.Env) channel.Lookup {
			return inProcess{sim: env.Sim, env: env}
		},
	})
}
