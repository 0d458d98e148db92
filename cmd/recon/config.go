package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

// Duration is a time.Duration written in Go syntax ("90s", "5m") in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 90s or 5m", n.Line)
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use Go syntax such as 90s or 5m)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration in Go syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Config is config.yaml (CONTRACT §7).
type Config struct {
	Database  DatabaseConfig  `yaml:"database"`
	Reconcile ReconcileConfig `yaml:"reconcile"`
	Notify    NotifyConfig    `yaml:"notify"`
	Schedule  ScheduleConfig  `yaml:"schedule"`
	Channels  []ChannelConfig `yaml:"channels"`
	Log       LogConfig       `yaml:"log"`
	Metrics   MetricsConfig   `yaml:"metrics"`
	Demo      DemoConfig      `yaml:"demo"`
	// Statements configures statement reconciliation (CONTRACT §8).
	Statements StatementsConfig `yaml:"statements"`
	// Orders maps an existing orders table; nil uses recon's payment_orders.
	Orders *repo.OrderMapping `yaml:"orders"`
	// Refunds maps an existing refunds table beside Orders; nil uses
	// recon's refund_orders.
	Refunds *repo.RefundMapping `yaml:"refunds"`
	Console ConsoleConfig       `yaml:"console"`
	// Callbacks is the listener of the channels' notifications (CONTRACT
	// §11); no addr, no listener.
	Callbacks CallbacksConfig `yaml:"callbacks"`

	path string
}

// DatabaseConfig is the database key.
type DatabaseConfig struct {
	Driver       string `yaml:"driver"`
	DSN          string `yaml:"dsn" json:"-"`
	MaxOpenConns int    `yaml:"max_open_conns"`
}

// ReconcileConfig is the reconcile key.
type ReconcileConfig struct {
	GracePeriod   Duration    `yaml:"grace_period"`
	MaxAge        Duration    `yaml:"max_age"`
	BatchSize     int         `yaml:"batch_size"`
	Concurrency   int         `yaml:"concurrency"`
	QuerySchedule []Duration  `yaml:"query_schedule"`
	Jitter        float64     `yaml:"jitter"`
	CloseOnExpiry bool        `yaml:"close_on_expiry"`
	LookupRetry   RetryConfig `yaml:"lookup_retry"`
	ShutdownGrace Duration    `yaml:"shutdown_grace"`
	Heartbeat     Duration    `yaml:"heartbeat"`
	// LeaseTTL is how long the database lease of a pass (reconcile and
	// backfill per shard, notify) holds without renewal: a holder that was
	// killed blocks the next pass for at most this long. It is renewed
	// every third of it and expires by the database's clock.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// CommitBatch is the most orders committed in one transaction, each
	// under its own version guard.
	CommitBatch int `yaml:"commit_batch"`
}

// RetryConfig is reconcile.lookup_retry.
type RetryConfig struct {
	InitialInterval Duration `yaml:"initial_interval"`
	MaxInterval     Duration `yaml:"max_interval"`
	MaxElapsed      Duration `yaml:"max_elapsed"`
}

// NotifyConfig is the notify key.
type NotifyConfig struct {
	Concurrency int `yaml:"concurrency"`
	// PerMerchantConcurrency caps one merchant's requests in flight (and
	// never more than half of concurrency).
	PerMerchantConcurrency int `yaml:"per_merchant_concurrency"`
	// MerchantBreaker pauses a merchant for the rest of a pass after
	// failures in a row.
	MerchantBreaker MerchantBreakerConfig `yaml:"merchant_breaker"`
	Timeout         Duration              `yaml:"timeout"`
	BatchSize       int                   `yaml:"batch_size"`
	Lease           Duration              `yaml:"lease"`
	RetrySchedule   []Duration            `yaml:"retry_schedule"`
	// Sink sends every notification to one URL of the team's own service
	// instead of the merchants' notify_url.
	Sink *SinkConfig `yaml:"sink"`
	// AllowPrivateNetworks lets notifications go to loopback, private,
	// link-local and other non-public addresses (refused by default: a
	// notify_url must not reach internal services).
	AllowPrivateNetworks bool `yaml:"allow_private_networks"`
}

// SinkConfig is notify.sink.
type SinkConfig struct {
	URL    string `yaml:"url" json:"-"`
	Secret string `yaml:"secret" json:"-"`
}

// MerchantBreakerConfig is notify.merchant_breaker.
type MerchantBreakerConfig struct {
	// Failures is how many failed attempts in a row pause a merchant for
	// the rest of the pass (0: never).
	Failures int `yaml:"failures"`
}

// ScheduleConfig is the schedule key: cron specs for recon schedule.
type ScheduleConfig struct {
	Reconcile string `yaml:"reconcile"`
	Notify    string `yaml:"notify"`
}

// ChannelConfig is one entry of channels.
type ChannelConfig struct {
	Name      string   `yaml:"name"`
	Kind      string   `yaml:"kind"`
	BaseURL   string   `yaml:"base_url"`
	RateLimit float64  `yaml:"rate_limit"`
	Timeout   Duration `yaml:"timeout"`
	// Concurrency is this channel's own number of lookup workers (0: its
	// even share of reconcile.concurrency).
	Concurrency int `yaml:"concurrency"`
	// Breaker pauses the channel for the rest of a pass after failed
	// lookups in a row, probing it again every probe_interval.
	Breaker *BreakerConfig `yaml:"breaker"`
	// httpjson (CONTRACT §6): the signing secret, and the protocol's paths,
	// codes and status values where the channel differs from the defaults.
	Secret       string            `yaml:"secret" json:"-"`
	LookupPath   string            `yaml:"lookup_path"`
	OrderParam   string            `yaml:"order_param"`
	SuccessCode  string            `yaml:"success_code"`
	NotFoundCode string            `yaml:"not_found_code"`
	StatusMap    map[string]string `yaml:"status_map"`
	// StatementPath is where an httpjson channel serves its daily statement.
	StatementPath string `yaml:"statement_path"`
	// RefundLookupPath is where an httpjson channel answers refund lookups
	// (CONTRACT §10; default /refund/get_result).
	RefundLookupPath string `yaml:"refund_lookup_path"`
	// FeeRate is the share of a payment the channel should keep as its fee
	// (0.006 for 0.6%); a statement fee off it by more than one minor unit
	// is FEE_MISMATCH. 0 checks nothing.
	FeeRate float64 `yaml:"fee_rate"`
	// alipay
	AppID string `yaml:"app_id"`
	// PID is the Alipay partner ID (2088…) whose bills the channel
	// imports: a bill naming another account (#账号) is refused.
	PID string `yaml:"pid"`
	// alipay, wechatpay
	PrivateKeyFile string `yaml:"private_key_file"`
	PublicKeyFile  string `yaml:"public_key_file"`
	// wechatpay
	MchID       string `yaml:"mch_id"`
	CertSerial  string `yaml:"cert_serial"`
	PublicKeyID string `yaml:"public_key_id"`
	// stripe
	APIKey string `yaml:"api_key" json:"-"`
	// WebhookSecret (stripe, whsec_…) verifies the webhook events the
	// callback listener receives.
	WebhookSecret string `yaml:"webhook_secret" json:"-"`
	// APIv3Key (wechatpay, 32 bytes) decrypts the notifications the
	// callback listener receives.
	APIv3Key string `yaml:"api_v3_key" json:"-"`
	// simulator
	Simulator SimulatorConfig `yaml:"simulator"`
	// Insecure allows a plain-http base_url where it would expose a secret
	// or trust unsigned answers: an httpjson channel without a secret, any
	// stripe channel; and plain-http statement downloads, which are
	// otherwise fetched over https (tests, simulators).
	Insecure bool `yaml:"insecure"`
}

// BreakerConfig is channels[].breaker.
type BreakerConfig struct {
	// Failures is how many transient failures in a row (timeouts, refused
	// connections, 5xx) pause the channel; 0 turns the breaker off.
	Failures int `yaml:"failures"`
	// ProbeInterval is how often a paused channel gets one probe lookup.
	ProbeInterval Duration `yaml:"probe_interval"`
}

// DefaultBreaker is channels[].breaker when a channel sets none.
func DefaultBreaker() BreakerConfig {
	return BreakerConfig{Failures: 10, ProbeInterval: Duration(5 * time.Second)}
}

// UnmarshalYAML reads a breaker over the defaults, so that a key left out
// keeps its default.
func (b *BreakerConfig) UnmarshalYAML(n *yaml.Node) error {
	// Node.Decode does not refuse unknown keys as the file's decoder does.
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "failures" && k != "probe_interval" {
			return fmt.Errorf("line %d: field %s not found in type main.BreakerConfig", n.Content[i].Line, k)
		}
	}
	type plain BreakerConfig
	v := plain(DefaultBreaker())
	if err := n.Decode(&v); err != nil {
		return err
	}
	*b = BreakerConfig(v)
	return nil
}

// breaker returns the channel's breaker settings, defaults filled in.
func (ch ChannelConfig) breaker() BreakerConfig {
	if ch.Breaker != nil {
		return *ch.Breaker
	}
	return DefaultBreaker()
}

// SimulatorConfig configures a simulator channel (kind: simulator).
type SimulatorConfig struct {
	Seed               int64    `yaml:"seed"`
	Latency            Duration `yaml:"latency"`
	PaidRate           float64  `yaml:"paid_rate"`
	FailedRate         float64  `yaml:"failed_rate"`
	ClosedRate         float64  `yaml:"closed_rate"`
	NotFoundRate       float64  `yaml:"not_found_rate"`
	LateRate           float64  `yaml:"late_rate"`
	LateAfter          int      `yaml:"late_after"`
	AmountTamperRate   float64  `yaml:"amount_tamper_rate"`
	CurrencyTamperRate float64  `yaml:"currency_tamper_rate"`
	BadSignatureRate   float64  `yaml:"bad_signature_rate"`
	RefundAbnormalRate float64  `yaml:"refund_abnormal_rate"`
	TransientRate      float64  `yaml:"transient_rate"`
	RateLimitRate      float64  `yaml:"rate_limit_rate"`
	RetryAfter         Duration `yaml:"retry_after"`
}

// LogConfig is the log key.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto (text on a terminal, JSON otherwise), json, text
}

// MetricsConfig is the metrics key.
type MetricsConfig struct {
	Addr        string `yaml:"addr"`                 // recon schedule serves /metrics and /healthz here; "" for none
	Pushgateway string `yaml:"pushgateway" json:"-"` // one-shot commands push here when set; may hold credentials
}

// StatementsConfig is the statements key.
type StatementsConfig struct {
	// Timezone is the zone of a statement day (China time for Alipay and
	// WeChat Pay).
	Timezone string `yaml:"timezone"`
	// Dir holds fetched files while they are verified and imported
	// (default: the system's temporary directory).
	Dir string `yaml:"dir"`
	// MaxBytes and MaxLines bound a statement file, decompressed: a file
	// past either is refused (FAILED). The defaults are far above a real
	// day and far below what a small zip can inflate to.
	MaxBytes int64 `yaml:"max_bytes"`
	MaxLines int64 `yaml:"max_lines"`

	loc *time.Location
}

// Limits are the statement file caps of statements.max_bytes and max_lines.
func (s StatementsConfig) Limits() channel.StatementLimits {
	return channel.StatementLimits{MaxBytes: s.MaxBytes, MaxLines: s.MaxLines}
}

// Location is the loaded statements.timezone.
func (s StatementsConfig) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// DemoConfig is the demo key.
type DemoConfig struct {
	Orders int `yaml:"orders"`
}

// DefaultConfig is the configuration before config.yaml is read.
func DefaultConfig() Config {
	d := func(s string) Duration { v, _ := time.ParseDuration(s); return Duration(v) }
	return Config{
		Database: DatabaseConfig{Driver: "sqlite", DSN: "recon.db"},
		Reconcile: ReconcileConfig{
			GracePeriod: d("2m"), MaxAge: d("24h"), BatchSize: 500, Concurrency: 16, CommitBatch: 64,
			QuerySchedule: []Duration{d("5s"), d("30s"), d("1m"), d("3m"), d("5m"), d("10m"), d("30m")},
			Jitter:        0.1, CloseOnExpiry: true,
			LookupRetry:   RetryConfig{InitialInterval: d("200ms"), MaxInterval: d("5s"), MaxElapsed: d("30s")},
			ShutdownGrace: d("30s"), Heartbeat: d("30s"), LeaseTTL: Duration(jobs.DefaultLeaseTTL),
		},
		Notify: NotifyConfig{
			Concurrency: 16, PerMerchantConcurrency: 4, MerchantBreaker: MerchantBreakerConfig{Failures: 3},
			Timeout: d("10s"), BatchSize: 200, Lease: d("22s"),
			RetrySchedule: []Duration{d("15s"), d("15s"), d("30s"), d("3m"), d("10m"), d("20m"), d("30m"), d("30m"), d("30m"), d("60m"), d("3h"), d("3h"), d("3h"), d("6h"), d("6h")},
		},
		Schedule:   ScheduleConfig{Reconcile: "@every 1m", Notify: "@every 15s"},
		Log:        LogConfig{Level: "info", Format: "auto"},
		Metrics:    MetricsConfig{Addr: ":9090"},
		Demo:       DemoConfig{Orders: 200},
		Console:    defaultConsole(),
		Statements: StatementsConfig{Timezone: "Asia/Shanghai", MaxBytes: channel.DefaultMaxStatementBytes, MaxLines: channel.DefaultMaxStatementLines},
	}
}

// ConfigError is an invalid configuration: it names the file and key.
type ConfigError struct {
	File string
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
}

// LoadConfig reads path over the defaults (an absent file is an error unless
// it is the default path and embedded defaults are wanted), applies the
// RECON_DATABASE_* environment overrides, expands ${ENV} references and
// validates. getenv is os.Getenv outside tests.
func LoadConfig(path string, data []byte, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	cfg.path = path
	if len(bytes.TrimSpace(data)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		// Lists replace the defaults rather than merging into them.
		cfg.Reconcile.QuerySchedule, cfg.Notify.RetrySchedule = nil, nil
		if err := dec.Decode(&cfg); err != nil {
			return cfg, &ConfigError{File: path, Msg: yamlMessage(err)}
		}
		def := DefaultConfig()
		if cfg.Reconcile.QuerySchedule == nil {
			cfg.Reconcile.QuerySchedule = def.Reconcile.QuerySchedule
		}
		if cfg.Notify.RetrySchedule == nil {
			cfg.Notify.RetrySchedule = def.Notify.RetrySchedule
		}
	}
	if v := getenv("RECON_DATABASE_DRIVER"); v != "" {
		cfg.Database.Driver = v
	}
	if v := getenv("RECON_DATABASE_DSN"); v != "" {
		cfg.Database.DSN = v
	}
	if err := cfg.expand(getenv); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type (?:main|repo)\.(\w+)`)

// yamlMessage turns yaml.v3's errors into messages that name the key.
func yamlMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if m := unknownField.FindStringSubmatch(l); m != nil {
			l = fmt.Sprintf("line %s: unknown key %q in %s", m[1], m[2], sectionOf(m[3]))
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "; ")
}

func sectionOf(typ string) string {
	switch typ {
	case "Config":
		return "the top level"
	case "DatabaseConfig":
		return "database"
	case "ReconcileConfig":
		return "reconcile"
	case "RetryConfig":
		return "reconcile.lookup_retry"
	case "NotifyConfig":
		return "notify"
	case "ScheduleConfig":
		return "schedule"
	case "ChannelConfig":
		return "a channels entry"
	case "SimulatorConfig":
		return "channels[].simulator"
	case "LogConfig":
		return "log"
	case "MetricsConfig":
		return "metrics"
	case "SinkConfig":
		return "notify.sink"
	case "OrderMapping":
		return "orders"
	case "OrderColumns":
		return "orders.columns"
	case "RefundMapping":
		return "refunds"
	case "RefundColumns":
		return "refunds.columns"
	case "ConsoleConfig":
		return "console"
	case "ConsoleAuthConfig":
		return "console.auth"
	case "ConsoleUser":
		return "a console.auth.users entry"
	case "CallbacksConfig":
		return "callbacks"
	}
	return typ
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${NAME} in the keys that may hold secrets or paths.
func (c *Config) expand(getenv func(string) string) error {
	one := func(key string, s *string) error {
		var missing []string
		*s = envRef.ReplaceAllStringFunc(*s, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v := getenv(name)
			if v == "" {
				missing = append(missing, name)
			}
			return v
		})
		if len(missing) > 0 {
			return &ConfigError{File: c.path, Key: key, Msg: fmt.Sprintf("environment variable %s is not set", strings.Join(missing, ", "))}
		}
		return nil
	}
	if err := one("database.dsn", &c.Database.DSN); err != nil {
		return err
	}
	if err := one("metrics.pushgateway", &c.Metrics.Pushgateway); err != nil {
		return err
	}
	if c.Notify.Sink != nil {
		if err := one("notify.sink.url", &c.Notify.Sink.URL); err != nil {
			return err
		}
		if err := one("notify.sink.secret", &c.Notify.Sink.Secret); err != nil {
			return err
		}
	}
	if err := one("console.csrf_key", &c.Console.CSRFKey); err != nil {
		return err
	}
	for i := range c.Console.Auth.Users {
		if err := one(fmt.Sprintf("console.auth.users[%d].password_hash", i), &c.Console.Auth.Users[i].PasswordHash); err != nil {
			return err
		}
	}
	for i := range c.Channels {
		ch := &c.Channels[i]
		k := fmt.Sprintf("channels[%d]", i)
		for _, f := range []struct {
			key string
			v   *string
		}{
			{"base_url", &ch.BaseURL}, {"secret", &ch.Secret}, {"app_id", &ch.AppID},
			{"private_key_file", &ch.PrivateKeyFile}, {"public_key_file", &ch.PublicKeyFile},
			{"mch_id", &ch.MchID}, {"cert_serial", &ch.CertSerial}, {"public_key_id", &ch.PublicKeyID},
			{"api_key", &ch.APIKey}, {"webhook_secret", &ch.WebhookSecret}, {"api_v3_key", &ch.APIv3Key},
		} {
			if err := one(k+"."+f.key, f.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// ChannelKinds are the channel kinds recon knows.
var ChannelKinds = []string{"simulator", "httpjson", "alipay", "wechatpay", "stripe"}

// Validate checks the configuration before anything connects; every message
// names the offending key.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &ConfigError{File: c.path, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if _, err := repo.NormalizeDSN(repo.Dialect(c.Database.Driver), c.Database.DSN); err != nil {
		key := "database.dsn"
		if c.Database.Driver != string(repo.MySQL) && c.Database.Driver != string(repo.SQLite) {
			key = "database.driver"
		}
		return bad(key, "%s", redactDSN(err.Error(), c.Database.DSN))
	}
	r := c.Reconcile
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"reconcile.grace_period", r.GracePeriod}, {"reconcile.max_age", r.MaxAge},
		{"reconcile.lookup_retry.initial_interval", r.LookupRetry.InitialInterval},
		{"reconcile.lookup_retry.max_interval", r.LookupRetry.MaxInterval},
		{"reconcile.lookup_retry.max_elapsed", r.LookupRetry.MaxElapsed},
		{"reconcile.shutdown_grace", r.ShutdownGrace}, {"reconcile.heartbeat", r.Heartbeat},
		{"reconcile.lease_ttl", r.LeaseTTL},
		{"notify.timeout", c.Notify.Timeout}, {"notify.lease", c.Notify.Lease},
	} {
		if d.v < 0 {
			return bad(d.key, "must not be negative (got %s)", d.v.D())
		}
	}
	if r.BatchSize < 1 || r.BatchSize > 10000 {
		return bad("reconcile.batch_size", "must be between 1 and 10000 (got %d)", r.BatchSize)
	}
	if r.Concurrency < 1 || r.Concurrency > 1024 {
		return bad("reconcile.concurrency", "must be between 1 and 1024 (got %d)", r.Concurrency)
	}
	if r.CommitBatch < 1 || r.CommitBatch > 1000 {
		return bad("reconcile.commit_batch", "must be between 1 and 1000 (got %d)", r.CommitBatch)
	}
	// Written so that NaN fails too.
	if !(r.Jitter >= 0 && r.Jitter < 1) {
		return bad("reconcile.jitter", "must be in [0, 1) (got %g)", r.Jitter)
	}
	if r.Heartbeat == 0 {
		return bad("reconcile.heartbeat", "must be positive")
	}
	if r.LeaseTTL < Duration(time.Second) {
		return bad("reconcile.lease_ttl", "must be at least 1s (got %s)", r.LeaseTTL.D())
	}
	if err := checkSchedule("reconcile.query_schedule", r.QuerySchedule, bad); err != nil {
		return err
	}
	if err := checkSchedule("notify.retry_schedule", c.Notify.RetrySchedule, bad); err != nil {
		return err
	}
	if c.Notify.Concurrency < 1 {
		return bad("notify.concurrency", "must be at least 1 (got %d)", c.Notify.Concurrency)
	}
	if c.Notify.PerMerchantConcurrency < 1 {
		return bad("notify.per_merchant_concurrency", "must be at least 1 (got %d)", c.Notify.PerMerchantConcurrency)
	}
	if c.Notify.MerchantBreaker.Failures < 0 {
		return bad("notify.merchant_breaker.failures", "must not be negative (got %d; 0 turns the breaker off)", c.Notify.MerchantBreaker.Failures)
	}
	if c.Notify.BatchSize < 1 {
		return bad("notify.batch_size", "must be at least 1 (got %d)", c.Notify.BatchSize)
	}
	if c.Notify.Timeout == 0 {
		return bad("notify.timeout", "must be positive")
	}
	// A claim must outlive its request, with room to record the outcome.
	if l, t := c.Notify.Lease.D(), c.Notify.Timeout.D(); l > 0 && (l < 2*t || l <= t+2*time.Second) {
		return bad("notify.lease", "must be at least twice notify.timeout and 2s longer (got %s with timeout %s)", l, t)
	}
	if sink := c.Notify.Sink; sink != nil {
		if sink.URL == "" {
			return bad("notify.sink.url", "is required when notify.sink is set")
		}
		if checkURL(sink.URL) != nil {
			// Not echoed: the URL may carry a token.
			return bad("notify.sink.url", "is not an absolute http(s) URL")
		}
		if sink.Secret == "" {
			return bad("notify.sink.secret", "is required: notifications to the sink are signed with it")
		}
	}
	if _, err := jobs.ParseSpec(c.Schedule.Reconcile); err != nil {
		return bad("schedule.reconcile", "%v", err)
	}
	if _, err := jobs.ParseSpec(c.Schedule.Notify); err != nil {
		return bad("schedule.notify", "%v", err)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "must be debug, info, warn or error (got %q)", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "text":
	default:
		return bad("log.format", "must be auto, json or text (got %q)", c.Log.Format)
	}
	if c.Metrics.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Addr); err != nil {
			return bad("metrics.addr", "want host:port or :port, such as :9090 (got %q)", c.Metrics.Addr)
		}
	}
	if c.Metrics.Pushgateway != "" && checkURL(c.Metrics.Pushgateway) != nil {
		// Not echoed: the URL may carry basic-auth credentials.
		return bad("metrics.pushgateway", "is not an absolute http(s) URL")
	}
	if err := c.Console.validate(bad); err != nil {
		return err
	}
	if err := c.Callbacks.validate(c.Console.Addr, bad); err != nil {
		return err
	}
	loc, err := time.LoadLocation(c.Statements.Timezone)
	if err != nil || c.Statements.Timezone == "" {
		return bad("statements.timezone", "unknown time zone %q (want an IANA name such as Asia/Shanghai or UTC)", c.Statements.Timezone)
	}
	c.Statements.loc = loc
	if c.Statements.MaxBytes < 1<<20 {
		return bad("statements.max_bytes", "must be at least 1048576 bytes (1 MiB) of a decompressed statement file (got %d; default %d, 2 GiB)", c.Statements.MaxBytes, channel.DefaultMaxStatementBytes)
	}
	if c.Statements.MaxLines < 1000 {
		return bad("statements.max_lines", "must be at least 1000 lines of a statement file (got %d; default %d)", c.Statements.MaxLines, channel.DefaultMaxStatementLines)
	}
	names := map[string]bool{}
	for i, ch := range c.Channels {
		key := fmt.Sprintf("channels[%d]", i)
		if ch.Name == "" {
			return bad(key+".name", "is required")
		}
		key = fmt.Sprintf("channels[%d] (%s)", i, ch.Name)
		if names[ch.Name] {
			return bad(key+".name", "duplicate channel name %q", ch.Name)
		}
		names[ch.Name] = true
		if !contains(ChannelKinds, ch.Kind) {
			return bad(key+".kind", "unknown channel kind %q (want one of %s)", ch.Kind, strings.Join(ChannelKinds, ", "))
		}
		if ch.RateLimit < 0 {
			return bad(key+".rate_limit", "must not be negative (got %g)", ch.RateLimit)
		}
		if ch.Timeout < 0 {
			return bad(key+".timeout", "must not be negative (got %s)", ch.Timeout.D())
		}
		if ch.Concurrency < 0 || ch.Concurrency > 1024 {
			return bad(key+".concurrency", "must be between 0 (an even share of reconcile.concurrency) and 1024 (got %d)", ch.Concurrency)
		}
		if b := ch.breaker(); b.Failures < 0 {
			return bad(key+".breaker.failures", "must not be negative (got %d; 0 turns the breaker off)", b.Failures)
		} else if b.ProbeInterval < Duration(100*time.Millisecond) {
			return bad(key+".breaker.probe_interval", "must be at least 100ms (got %s)", b.ProbeInterval.D())
		}
		if ch.Kind == "httpjson" && ch.BaseURL == "" {
			return bad(key+".base_url", "is required for kind httpjson")
		}
		if ch.BaseURL != "" {
			if err := checkURL(ch.BaseURL); err != nil {
				return bad(key+".base_url", "%v", err)
			}
		}
		if ch.FeeRate < 0 || ch.FeeRate >= 1 {
			return bad(key+".fee_rate", "must be a share between 0 and 1, such as 0.006 for 0.6%% (got %g)", ch.FeeRate)
		}
		if ch.StatementPath != "" && (ch.Kind != "httpjson" || !strings.HasPrefix(ch.StatementPath, "/")) {
			return bad(key+".statement_path", "is a path starting with / of an httpjson channel")
		}
		if ch.RefundLookupPath != "" && (ch.Kind != "httpjson" || !strings.HasPrefix(ch.RefundLookupPath, "/")) {
			return bad(key+".refund_lookup_path", "is a path starting with / of an httpjson channel")
		}
		if err := validateChannelKeys(ch, func(field, format string, args ...any) error {
			return bad(key+"."+field, format, args...)
		}); err != nil {
			return err
		}
		if msg := plainText(ch); msg != "" {
			return bad(key+".base_url", "%s; use https, or set insecure: true on this channel (tests, simulators)", msg)
		}
	}
	if c.Orders != nil {
		if err := c.Orders.Validate(); err != nil {
			return c.mappingError(err)
		}
		for v, name := range c.Orders.ChannelValues {
			if !names[name] {
				return bad("orders.channel_values."+v, "%q is not a channels[].name", name)
			}
		}
	}
	if c.Refunds != nil {
		if c.Orders == nil {
			return bad("refunds", "a mapped refunds table needs a mapped orders table (orders): its columns.order_id names the order there")
		}
		if err := c.Refunds.Validate(); err != nil {
			return c.mappingError(err)
		}
		for v, name := range c.Refunds.ChannelValues {
			if !names[name] {
				return bad("refunds.channel_values."+v, "%q is not a channels[].name", name)
			}
		}
	}
	return nil
}

// mappingError turns a *repo.MappingError (from validation or the check
// against the live table) into a ConfigError naming the key; other errors
// pass through.
func (c *Config) mappingError(err error) error {
	var me *repo.MappingError
	if errors.As(err, &me) {
		return &ConfigError{File: c.path, Key: me.FullKey(), Msg: me.Msg}
	}
	return err
}

// validateChannelKeys checks the keys each kind needs; adapters check the
// key files themselves when they are built.
func validateChannelKeys(ch ChannelConfig, bad func(field, format string, args ...any) error) error {
	required := map[string][]struct {
		field, v string
	}{
		"alipay":    {{"app_id", ch.AppID}, {"private_key_file", ch.PrivateKeyFile}, {"public_key_file", ch.PublicKeyFile}},
		"wechatpay": {{"mch_id", ch.MchID}, {"cert_serial", ch.CertSerial}, {"private_key_file", ch.PrivateKeyFile}, {"public_key_file", ch.PublicKeyFile}},
		"stripe":    {{"api_key", ch.APIKey}},
	}
	for _, f := range required[ch.Kind] {
		if strings.TrimSpace(f.v) == "" {
			return bad(f.field, "is required for kind %s", ch.Kind)
		}
	}
	if ch.PID != "" && (ch.Kind != "alipay" || !alipay.ValidPID(ch.PID)) {
		return bad("pid", "is an alipay channel's setting and %s", alipay.PIDRule)
	}
	for k, v := range ch.StatusMap {
		if !recon.ChannelStatus(v).Valid() {
			return bad("status_map."+k, "%q is not one of PAID, PENDING, FAILED, CLOSED, NOT_FOUND", v)
		}
	}
	s := ch.Simulator
	for _, r := range []struct {
		field string
		v     float64
	}{
		{"paid_rate", s.PaidRate}, {"failed_rate", s.FailedRate}, {"closed_rate", s.ClosedRate},
		{"not_found_rate", s.NotFoundRate}, {"late_rate", s.LateRate}, {"amount_tamper_rate", s.AmountTamperRate},
		{"currency_tamper_rate", s.CurrencyTamperRate}, {"bad_signature_rate", s.BadSignatureRate},
		{"transient_rate", s.TransientRate}, {"rate_limit_rate", s.RateLimitRate},
		{"refund_abnormal_rate", s.RefundAbnormalRate},
	} {
		if !(r.v >= 0 && r.v <= 1) {
			return bad("simulator."+r.field, "must be between 0 and 1 (got %g)", r.v)
		}
	}
	if s.Latency < 0 || s.RetryAfter < 0 {
		return bad("simulator", "latency and retry_after must not be negative")
	}
	return nil
}

// plainText says why a channel's plain-http base_url is refused, or "" when
// it is https, insecure is set, or http exposes nothing: alipay and
// wechatpay sign every request with the merchant's private key and verify
// every answer with the provider's public key, and an httpjson channel with
// a secret verifies every answer's HMAC (the secret itself is never sent).
func plainText(ch ChannelConfig) string {
	u, err := url.Parse(ch.BaseURL)
	if err != nil || !strings.EqualFold(u.Scheme, "http") || ch.Insecure {
		return ""
	}
	switch ch.Kind {
	case "httpjson":
		if ch.Secret == "" {
			return "is plain http and the channel has no secret, so its answers could be forged in transit"
		}
	case "stripe":
		return "is plain http, so the API key would be sent in clear"
	}
	return ""
}

func checkSchedule(key string, s []Duration, bad func(key, format string, args ...any) error) error {
	if len(s) == 0 {
		return bad(key, "must have at least one step")
	}
	for i, d := range s {
		if d <= 0 {
			return bad(fmt.Sprintf("%s[%d]", key, i), "must be positive (got %s)", d.D())
		}
	}
	return nil
}

func checkURL(s string) error {
	if _, err := channel.ParseBaseURL(s); err != nil {
		return fmt.Errorf("is %w", err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// redactDSN removes the DSN's password from a message.
func redactDSN(msg, dsn string) string {
	if at := strings.LastIndex(dsn, "@"); at > 0 {
		if colon := strings.Index(dsn[:at], ":"); colon >= 0 {
			if pw := dsn[colon+1 : at]; pw != "" {
				msg = strings.ReplaceAll(msg, pw, "***")
			}
		}
	}
	return msg
}

// readConfigFile reads the config file; a missing default file means the
// built-in defaults.
func readConfigFile(path string, explicit bool) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, &ConfigError{File: path, Msg: fmt.Sprintf("cannot read config: %v", err)}
	}
	return b, nil
}
