package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/httpjson"
	"github.com/recon-dev/recon/channel/wechatpay"
	"github.com/recon-dev/recon/repo"
)

// TestStatementImportRefusesForeignAndOversizedFiles imports, through
// `recon statement import`, files that verify as their format but are not
// the channel's day: another account or merchant, a line outside the day,
// a small compressed file that inflates past statements.max_bytes or
// max_lines. Each is FAILED with the reason and nothing of it is kept.
func TestStatementImportRefusesForeignAndOversizedFiles(t *testing.T) {
	keys, files := channeltest.KeyFiles(t)
	channels := fmt.Sprintf("  - {name: ali, kind: alipay, base_url: 'https://openapi.alipay.com/gateway.do', app_id: %q, private_key_file: %q, public_key_file: %q, pid: '2088000000000001'}\n",
		keys.AlipayAppID, files.AlipayAppPrivate, files.AlipayPublic) +
		"  - {name: wx, kind: wechatpay, " + wechatEntry(keys, "https://api.mch.weixin.qq.com", files.WechatMerchantPrivate, files.WechatPlatformPublic) + "}\n" +
		"  - {name: sim, kind: simulator}\n"
	cfg, store := seedCLI(t, channels, nil)
	body := readFile(t, cfg)
	withCaps := func(caps string) string {
		return writeConfig(t, strings.Replace(body, "channels:\n", "statements: {timezone: Asia/Shanghai, "+caps+"}\nchannels:\n", 1))
	}
	bytesCap := withCaps("max_bytes: 1048576")
	linesCap := withCaps("max_lines: 1000")

	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	payments := func(n int, at time.Time) []recon.StatementLine {
		ls := make([]recon.StatementLine, n)
		for i := range ls {
			ls[i] = recon.StatementLine{Kind: recon.LinePayment, OrderNo: fmt.Sprintf("X-%d", i), ChannelTxnID: fmt.Sprintf("T%d", i),
				Amount: 1000, Fee: 6, Currency: "CNY", OccurredAt: at.UTC()}
		}
		return ls
	}
	noon := func(day string) time.Time {
		d, _ := time.ParseInLocation(time.DateOnly, day, sh)
		return d.Add(12 * time.Hour)
	}
	aliBill := func(account, day string, lines []recon.StatementLine) string {
		var buf bytes.Buffer
		if err := alipay.WriteBill(&buf, alipay.Bill{Account: account, Day: day, Lines: lines, ExportedAt: noon(day)}); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	wxBill := func(mch string, lines []recon.StatementLine, gz bool) string {
		var buf bytes.Buffer
		if err := wechatpay.WriteBill(&buf, wechatpay.Bill{AppID: "wx1", MchID: mch, Lines: lines}); err != nil {
			t.Fatal(err)
		}
		if !gz {
			return buf.String()
		}
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(buf.Bytes())
		_ = zw.Close()
		return z.String()
	}
	csvFile := func(lines []recon.StatementLine) string {
		var buf bytes.Buffer
		w := httpjson.NewStatementWriter(&buf)
		for _, l := range lines {
			if err := w.Write(l); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}

	cases := []struct {
		name, channel, day, file, config, want string
	}{
		{"alipay bill of another account", "ali", "2026-11-01", aliBill("20880000000000000156", "2026-11-01", payments(1, noon("2026-11-01"))), bytesCap,
			"the bill is of account #账号 20880000000000000156, not the channel's 2088000000000001"},
		{"alipay bill of another day", "ali", "2026-11-02", aliBill("20880000000000010156", "2026-11-01", payments(1, noon("2026-11-01"))), bytesCap,
			"the bill covers #起始日期 2026年11月01日 00:00:00 to 终止日期 2026年11月02日 00:00:00, not the day 2026-11-02"},
		{"alipay line outside the day", "ali", "2026-11-03", aliBill("20880000000000010156", "2026-11-03", payments(1, noon("2026-11-02"))), bytesCap,
			"完成时间 2026-11-02 12:00:00 is outside the statement's day 2026-11-03"},
		{"alipay zip past max_lines", "ali", "2026-11-04", aliBill("20880000000000010156", "2026-11-04", payments(5000, noon("2026-11-04"))), linesCap,
			"more than 1000 lines (statements.max_lines)"},
		{"wechat bill of another merchant", "wx", "2026-11-05", wxBill("1900000009", payments(1, noon("2026-11-05")), false), bytesCap,
			"商户号 1900000009 is not the channel's mch_id " + keys.WechatMchID},
		{"wechat gzip past max_bytes", "wx", "2026-11-06", wxBill(keys.WechatMchID, payments(20000, noon("2026-11-06")), true), bytesCap,
			"more than 1048576 bytes decompressed (statements.max_bytes)"},
		{"csv line outside the day", "sim", "2026-11-07", csvFile(append(payments(1, noon("2026-11-07")), payments(1, noon("2026-11-08"))...)), bytesCap,
			"line 3: time 2026-11-08 12:00:00 is outside the statement's day 2026-11-07"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Contains(c.name, "past max_") && len(c.file) >= 1<<20/4 {
				t.Fatalf("the file is %d bytes: not small enough to show the cap is on what it inflates to", len(c.file))
			}
			path := filepath.Join(t.TempDir(), "bill")
			writeFileT(t, path, c.file)
			code, out, stderr := runCLI(t, nil, "statement", "import", "--channel", c.channel, "--date", c.day, "--file", path, "--config", c.config)
			if code != exitFailed || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "bad statement file") {
				t.Fatalf("exit %d, want 1 naming %q\n%s\n%s", code, c.want, out, stderr)
			}
			st, err := store.GetStatement(context.Background(), c.channel, c.day)
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != repo.StatementFailed || !strings.Contains(st.Error, c.want) || st.Lines != 0 || st.Payments != 0 || st.Refunds != 0 {
				t.Errorf("statement %s %s: status %s, %d lines (%d payments, %d refunds), error %q; want FAILED, nothing kept, the reason",
					c.channel, c.day, st.Status, st.Lines, st.Payments, st.Refunds, st.Error)
			}
		})
	}
	// The same files within the channel's identity and caps import.
	path := filepath.Join(t.TempDir(), "good")
	writeFileT(t, path, aliBill("20880000000000010156", "2026-11-09", payments(3, noon("2026-11-09"))))
	if code, out, stderr := runCLI(t, nil, "statement", "import", "--channel", "ali", "--date", "2026-11-09", "--file", path, "--config", linesCap); code != 0 {
		t.Fatalf("good bill: exit %d\n%s\n%s", code, out, stderr)
	}
}
