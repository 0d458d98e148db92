package recon_test

import (
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/recon-dev/recon"
)

func TestCleanText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain message", "plain message"},
		{"订单不存在", "订单不存在"},
		{"\x1b[2J\x1b[H ALL ORDERS RECONCILED OK", "ALL ORDERS RECONCILED OK"},
		{"a\x1b[1;31mred\x1b[0mb", "aredb"},
		{"title\x1b]0;pwned\x07 after", "title after"},
		{"link \x1b]8;;http://x\x1b\\text\x1b]8;;\x1b\\ end", "link text end"},
		{"c1 \u009b2Jcsi", "c1 csi"},
		{"two\nlines\r\tand tab", "two lines  and tab"},
		{"bell\x07 nul\x00 del\x7f", "bell nul del"},
		{"bidi \u202eevil\u202c", "bidi evil"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"esc at end \x1b", "esc at end"},
		{"\x1b(B charset", "charset"},
		{"  padded  ", "padded"},
	} {
		if got := recon.CleanText(tc.in); got != tc.want {
			t.Errorf("CleanText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzCleanText(f *testing.F) {
	f.Add("\x1b[2J\x1b[H ALL ORDERS RECONCILED OK")
	f.Add("\x1b]0;x\x07\u009b1m\u202e")
	f.Fuzz(func(t *testing.T, s string) {
		got := recon.CleanText(s)
		if strings.IndexFunc(got, unicode.IsControl) >= 0 {
			t.Fatalf("CleanText(%q) = %q keeps a control character", s, got)
		}
		if recon.CleanText(got) != got {
			t.Fatalf("CleanText is not idempotent on %q", got)
		}
	})
}

func TestStatementLineWithControlCharactersIsRefused(t *testing.T) {
	at := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	good := recon.StatementLine{LineNo: 3, Kind: recon.LineRefund, OrderNo: "O1", ChannelTxnID: "T1", RefundNo: "R1",
		Amount: 100, Currency: "CNY", OccurredAt: at}
	if err := good.Validate(); err != nil {
		t.Fatalf("good line refused: %v", err)
	}
	for name, f := range map[string]func(*recon.StatementLine){
		"order number":   func(l *recon.StatementLine) { l.OrderNo = "O1\x1b[2J" },
		"transaction id": func(l *recon.StatementLine) { l.ChannelTxnID = "T1\r\nOK" },
		"refund number":  func(l *recon.StatementLine) { l.RefundNo = "R1\u009b" },
	} {
		l := good
		f(&l)
		if err := l.Validate(); err == nil {
			t.Errorf("%s with control characters accepted: %+v", name, l)
		}
	}
}
