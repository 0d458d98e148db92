package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/repo/repotest"
)

// stripeConfig writes a config with one stripe channel entry (the part
// inside the braces) and a fresh, migrated SQLite database.
func stripeConfig(t *testing.T, entry string) string {
	t.Helper()
	db := repotest.SQLiteFile(t)
	return writeConfig(t, fmt.Sprintf("database: {driver: sqlite, dsn: %q}\nchannels:\n  - {name: st, kind: stripe, %s}\n", db, entry))
}

func TestStripeChannelBuilds(t *testing.T) {
	keys, err := simulator.TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	sim := simulator.New(simulator.Config{Seed: 1})
	orders := simulator.NewOrders()
	srv := httptest.NewServer(sim.Server(orders, keys))
	defer srv.Close()

	p := stripeConfig(t, fmt.Sprintf("base_url: %q, api_key: '${STRIPE_KEY}', timeout: 2s, insecure: true", srv.URL))
	env := map[string]string{"STRIPE_KEY": keys.StripeAPIKey}
	if code, out, stderr := runCLI(t, env, "run", "--config", p); code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}

	// The builder's adapter speaks to the simulator's Stripe paths.
	ch, err := channelBuilders["stripe"](ChannelConfig{Name: "st", Kind: "stripe", BaseURL: srv.URL, APIKey: keys.StripeAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ch.(channel.Closer); !ok {
		t.Fatalf("%T cannot close orders", ch)
	}
	o := recon.Order{OrderNo: "kind-stripe", ChannelTxnID: "pi_kindstripe", Amount: 500, Currency: "USD",
		Status: recon.StatusPending, CreatedAt: time.Now().Add(-time.Hour)}
	orders.Add(o)
	sim.Set(o.OrderNo, simulator.Behaviour{Status: recon.ChannelPaid})
	r, err := ch.Lookup(context.Background(), o)
	if err != nil || r.Status != recon.ChannelPaid || r.Amount != 500 || r.Currency != "USD" {
		t.Fatalf("lookup: %+v %v", r, err)
	}
}

func TestStripeChannelBadConfigExitsTwo(t *testing.T) {
	const secret = "sk_live_do_not_print_me"
	for _, tc := range []struct {
		name, entry string
		env         map[string]string
		key         string // the key the message must name
	}{
		{"missing api_key", "base_url: 'http://127.0.0.1:9'", nil, "api_key"},
		{"api_key from an unset variable", "api_key: '${STRIPE_KEY}'", nil, "api_key"},
		{"publishable key", "api_key: 'pk_live_do_not_print_me'", nil, "api_key"},
		{"not a Stripe key", "api_key: 'whsec_do_not_print_me'", nil, "api_key"},
		{"key with whitespace", "api_key: '${STRIPE_KEY}'", map[string]string{"STRIPE_KEY": secret + " x"}, "api_key"},
		{"base_url not a URL", "base_url: 'api.stripe.com', api_key: '" + secret + "'", nil, "base_url"},
		{"base_url of another scheme", "base_url: 'ftp://api.stripe.com', api_key: '" + secret + "'", nil, "base_url"},
		{"negative timeout", "timeout: -1s, api_key: '" + secret + "'", nil, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := stripeConfig(t, tc.entry)
			code, out, stderr := runCLI(t, tc.env, "run", "--config", p)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, exitUsage, out, stderr)
			}
			if !strings.Contains(stderr, "channels[0]") || !strings.Contains(stderr, tc.key) {
				t.Fatalf("message does not name channels[0] and %s: %s", tc.key, stderr)
			}
			for _, leak := range []string{"do_not_print_me", secret} {
				if strings.Contains(stderr+out, leak) {
					t.Fatalf("the key is printed: %s", stderr)
				}
			}
		})
	}
}
