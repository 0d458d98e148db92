package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recon-dev/recon/channel/channeltest"
)

// TestDeploymentConfigBuildsEveryChannel loads the config.yaml that the
// kustomize base ships in its ConfigMap, with the Secret's environment and
// key files in place, and builds every channel it names: a deployment
// filled in as documented starts.
func TestDeploymentConfigBuildsEveryChannel(t *testing.T) {
	raw, err := os.ReadFile("../../deployments/base/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keys, files := channeltest.KeyFiles(t)
	// The file names the recon-channel-keys Secret mounts (secret.example.yaml).
	dir := t.TempDir()
	for name, src := range map[string]string{
		"alipay-app-private-key.pem":  files.AlipayAppPrivate,
		"alipay-public-key.pem":       files.AlipayPublic,
		"wechatpay-apiclient-key.pem": files.WechatMerchantPrivate,
		"wechatpay-public-key.pem":    files.WechatPlatformPublic,
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	body := strings.ReplaceAll(string(raw), "/etc/recon/keys/", dir+"/")
	env := map[string]string{
		"RECON_DATABASE_DSN": "recon:pw@tcp(db:3306)/payments", "ALIPAY_APP_ID": keys.AlipayAppID,
		"WECHATPAY_MCH_ID": keys.WechatMchID, "WECHATPAY_CERT_SERIAL": keys.WechatMerchantSerial,
		"WECHATPAY_PUBLIC_KEY_ID": keys.WechatPlatformKeyID, "STRIPE_API_KEY": "rk_live_placeholder",
		"ACQUIRER_SIGNING_SECRET": "s",
	}
	cfg, err := LoadConfig("deployments/base/config.yaml", []byte(body), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a := &app{stdout: os.Stdout, stderr: os.Stderr, getenv: func(k string) string { return env[k] }}
	chans, err := a.buildChannels(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"alipay", "wechatpay", "stripe", "httpjson"} {
		found := false
		for _, cc := range cfg.Channels {
			if cc.Kind == kind && chans[cc.Name] != nil {
				found = true
			}
		}
		if !found {
			t.Errorf("the deployment config has no working %s channel", kind)
		}
	}
}
