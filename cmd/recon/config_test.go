package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

// shippedConfig loads the repository's config.yaml.
func shippedConfig(t *testing.T) Config {
	t.Helper()
	data, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig("config.yaml", data, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestShippedConfigIsValid(t *testing.T) {
	cfg := shippedConfig(t)
	if cfg.Database.Driver != "sqlite" || len(cfg.Channels) == 0 || cfg.Channels[0].Kind != "simulator" {
		t.Fatalf("shipped config is not SQLite + simulator: %+v", cfg.Database)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		yaml, key string
	}{
		{"reconcile:\n  grace_perod: 5s\n", `unknown key "grace_perod" in reconcile`},
		{"bogus: 1\n", `unknown key "bogus"`},
		{"reconcile:\n  grace_period: -5s\n", "reconcile.grace_period: must not be negative"},
		{"reconcile:\n  max_age: soon\n", `"soon" is not a duration`},
		{"reconcile:\n  batch_size: 0\n", "reconcile.batch_size"},
		{"reconcile:\n  query_schedule: []\n", "reconcile.query_schedule"},
		{"notify:\n  retry_schedule: [5s, 0s]\n", "notify.retry_schedule[1]"},
		{"database:\n  driver: postgres\n", "database.driver"},
		{"database:\n  driver: mysql\n  dsn: 'root:hunter2@tcp(db:3306'\n", "database.dsn"},
		{"channels:\n  - {name: a, kind: paypal}\n", `channels[0] (a).kind: unknown channel kind "paypal"`},
		{"channels:\n  - {name: a, kind: httpjson}\n", "channels[0] (a).base_url: is required"},
		{"channels:\n  - {name: a, kind: httpjson, base_url: 'not a url'}\n", "channels[0] (a).base_url"},
		{"channels:\n  - {name: a, kind: simulator}\n  - {name: a, kind: simulator}\n", "channels[1] (a).name: duplicate"},
		{"channels:\n  - {name: a, kind: stripe}\n", "channels[0] (a).api_key: is required"},
		{"channels:\n  - {name: a, kind: httpjson, base_url: 'http://x', secret: '${NOPE_SECRET}'}\n", "channels[0].secret: environment variable NOPE_SECRET is not set"},
		{"schedule:\n  reconcile: 'every minute'\n", "schedule.reconcile"},
		{"log:\n  level: loud\n", "log.level"},
		{"reconcile:\n  jitter: .nan\n", "reconcile.jitter"},
		{"reconcile:\n  commit_batch: 0\n", "reconcile.commit_batch"},
		{"channels:\n  - {name: a, kind: simulator, simulator: {paid_rate: .nan}}\n", "simulator.paid_rate"},
		{"notify:\n  timeout: 10s\n  lease: 15s\n", "notify.lease: must be at least twice notify.timeout"},
		{"channels:\n  - {name: a, kind: httpjson, base_url: 'http://x', status_map: {OK: DONE}}\n", "channels[0] (a).status_map.OK"},
		{"reconcile:\n  lease_ttl: 0s\n", "reconcile.lease_ttl: must be at least 1s"},
		{"channels:\n  - {name: a, kind: simulator, concurrency: -1}\n", "channels[0] (a).concurrency"},
		{"channels:\n  - {name: a, kind: simulator, breaker: {failures: -1}}\n", "channels[0] (a).breaker.failures"},
		{"channels:\n  - {name: a, kind: simulator, breaker: {probe_interval: 1ms}}\n", "channels[0] (a).breaker.probe_interval"},
		{"channels:\n  - {name: a, kind: simulator, breaker: {failurs: 3}}\n", "failurs"},
		{"notify:\n  per_merchant_concurrency: 0\n", "notify.per_merchant_concurrency"},
		{"notify:\n  merchant_breaker: {failures: -1}\n", "notify.merchant_breaker.failures"},
		{"notify:\n  sink: {secret: s}\n", "notify.sink.url: is required"},
		{"notify:\n  sink: {url: 'ftp://x', secret: s}\n", "notify.sink.url: is not an absolute http(s) URL"},
		{"notify:\n  sink: {url: 'https://x/n'}\n", "notify.sink.secret: is required"},
		{"notify:\n  sink: {url: 'https://x/n', secret: '${NOPE_SINK}'}\n", "notify.sink.secret: environment variable NOPE_SINK is not set"},
		{"notify:\n  sink: {url: 'https://x/n', secert: s}\n", `unknown key "secert" in notify.sink`},
		{"orders: {table: t, colums: {}}\n", `unknown key "colums" in orders`},
		{"orders: {table: t, columns: {id: a, order_no: a, merchant_id: m, channel: c, amount: x, status: s}}\n", "orders.columns.created_at: is required"},
		{"reconcile:\n  lease_ttl: -1m\n", "reconcile.lease_ttl: must not be negative"},
		{"metrics:\n  addr: 'localhost'\n", "metrics.addr"},
		{"channels:\n  - {name: a, kind: httpjson, base_url: 'https://u:hunter2@h/%zz'}\n", "channels[0] (a).base_url: is not a valid URL"},
		{"channels:\n  - {name: a, kind: httpjson, base_url: 'ftp://u:hunter2@h/x'}\n", "channels[0] (a).base_url"},
		{"metrics:\n  pushgateway: 'ftp://u:hunter2@gw:9091'\n", "metrics.pushgateway: is not an absolute http(s) URL"},
		{"metrics:\n  pushgateway: 'http://u:${NOPE_PW}@gw:9091'\n", "metrics.pushgateway: environment variable NOPE_PW is not set"},
		{"channels:\n  - {name: a, kind: httpjson, base_url: 'http://x', refund_lookup_path: refunds}\n", "channels[0] (a).refund_lookup_path"},
		{"channels:\n  - {name: a, kind: simulator, refund_lookup_path: /refunds}\n", "channels[0] (a).refund_lookup_path"},
		{"channels:\n  - {name: a, kind: simulator, simulator: {refund_abnormal_rate: 2}}\n", "simulator.refund_abnormal_rate"},
	}
	for _, tc := range cases {
		_, err := LoadConfig("cfg.yaml", []byte(tc.yaml), noEnv)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("%q: err = %v, want a ConfigError", tc.yaml, err)
		}
		if !strings.Contains(err.Error(), tc.key) || !strings.HasPrefix(err.Error(), "cfg.yaml: ") {
			t.Fatalf("%q: error %q does not name %q and the file", tc.yaml, err, tc.key)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error leaks the password: %v", err)
		}
	}
}

func TestConfigEnvOverridesAndSecrets(t *testing.T) {
	env := map[string]string{
		"RECON_DATABASE_DRIVER": "mysql",
		"RECON_DATABASE_DSN":    "recon:${DB_PW}@tcp(db:3306)/recon",
		"DB_PW":                 "pw",
		"SIG":                   "topsecret",
	}
	cfg, err := LoadConfig("c.yaml", []byte("channels:\n  - {name: a, kind: httpjson, base_url: 'http://x', secret: '${SIG}'}\n"),
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Driver != "mysql" || cfg.Database.DSN != "recon:pw@tcp(db:3306)/recon" || cfg.Channels[0].Secret != "topsecret" {
		t.Fatalf("cfg = %+v", cfg)
	}
	if len(cfg.Reconcile.QuerySchedule) != 7 {
		t.Fatalf("defaults lost: %v", cfg.Reconcile.QuerySchedule)
	}
}

func TestLeaseAndMetricsDefaults(t *testing.T) {
	cfg, err := LoadConfig("c.yaml", []byte("metrics:\n  pushgateway: 'http://push:${PW}@gw:9091'\n"),
		func(k string) string { return map[string]string{"PW": "pw"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Reconcile.LeaseTTL.D() != 15*time.Second || cfg.Metrics.Addr != ":9090" || cfg.Metrics.Pushgateway != "http://push:pw@gw:9091" {
		t.Fatalf("lease_ttl %s, metrics %+v", cfg.Reconcile.LeaseTTL.D(), cfg.Metrics)
	}
	shipped := shippedConfig(t)
	// deployments/components/schedule probes /healthz on this port.
	if shipped.Metrics.Addr != ":9090" || shipped.Reconcile.LeaseTTL.D() <= 0 {
		t.Fatalf("shipped metrics.addr %q, lease_ttl %s", shipped.Metrics.Addr, shipped.Reconcile.LeaseTTL.D())
	}
}

// A channel that would send a secret, or trust unsigned answers, over plain
// http is refused at start-up unless it sets insecure: true.
func TestPlainTextChannelsNeedInsecure(t *testing.T) {
	keys := "app_id: '1', mch_id: '1', cert_serial: 'AB', private_key_file: k.pem, public_key_file: p.pem"
	for _, tc := range []struct {
		entry, refused string
	}{
		{"kind: httpjson, base_url: 'http://bank.internal/api'", "channels[1] (a).base_url: is plain http and the channel has no secret"},
		{"kind: httpjson, base_url: 'HTTP://bank.internal/api'", "channels[1] (a).base_url: is plain http"},
		{"kind: httpjson, base_url: 'http://bank.internal/api', insecure: true", ""},
		{"kind: httpjson, base_url: 'http://bank.internal/api', secret: s", ""},
		{"kind: httpjson, base_url: 'https://bank.internal/api'", ""},
		{"kind: stripe, base_url: 'http://stripe-mock:12111', api_key: sk_test_x", "channels[1] (a).base_url: is plain http, so the API key would be sent in clear"},
		{"kind: stripe, base_url: 'http://stripe-mock:12111', api_key: sk_test_x, insecure: true", ""},
		{"kind: stripe, api_key: sk_test_x", ""},
		{"kind: alipay, base_url: 'http://sim:8081/gateway.do', " + keys, ""},
		{"kind: wechatpay, base_url: 'http://sim:8081', " + keys, ""},
	} {
		_, err := LoadConfig("c.yaml", []byte("channels:\n  - {name: s, kind: simulator}\n  - {name: a, "+tc.entry+"}\n"), func(string) string { return "" })
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.entry, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), "insecure: true")):
			t.Errorf("%s: error %v, want one saying %q and naming insecure: true", tc.entry, err, tc.refused)
		}
	}
	// Through the CLI: exit 2.
	p := writeConfig(t, "channels:\n  - {name: a, kind: httpjson, base_url: 'http://bank.internal/api'}\n")
	if code, _, stderr := runCLI(t, nil, "run", "--config", p); code != exitUsage || !strings.Contains(stderr, "channels[0] (a).base_url") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestChannelBreakerKeepsTheDefaultsOfKeysLeftOut(t *testing.T) {
	cfg, err := LoadConfig("config.yaml", []byte("channels:\n  - {name: a, kind: simulator}\n  - {name: b, kind: simulator, breaker: {probe_interval: 2s}}\n  - {name: c, kind: simulator, breaker: {failures: 0}}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	pol := channelPolicies(cfg)
	if a := pol["a"].Breaker; a.Failures != 10 || a.ProbeInterval != 5*time.Second {
		t.Fatalf("default breaker %+v", a)
	}
	if b := pol["b"].Breaker; b.Failures != 10 || b.ProbeInterval != 2*time.Second {
		t.Fatalf("breaker with probe_interval only %+v", b)
	}
	if c := pol["c"].Breaker; c.Failures != 0 {
		t.Fatalf("breaker turned off %+v", c)
	}
}
