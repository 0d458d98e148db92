package channel_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/recon-dev/recon/channel"
)

func TestStatementLimitsReader(t *testing.T) {
	cases := []struct {
		name string
		lim  channel.StatementLimits
		in   string
		want string // "" reads to the end
	}{
		{"at the byte cap", channel.StatementLimits{MaxBytes: 6}, "a\nb\nc\n", ""},
		{"past the byte cap", channel.StatementLimits{MaxBytes: 5}, "a\nb\nc\n", "more than 5 bytes decompressed (statements.max_bytes)"},
		{"at the line cap", channel.StatementLimits{MaxLines: 3}, "a\nb\nc\n", ""},
		{"past the line cap", channel.StatementLimits{MaxLines: 2}, "a\nb\nc\n", "more than 2 lines (statements.max_lines)"},
		{"defaults", channel.StatementLimits{}, strings.Repeat("x\n", 1000), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One byte a read, so that the cap is checked on every read.
			got, err := io.ReadAll(c.lim.Reader(iotestOneByte{strings.NewReader(c.in)}))
			switch {
			case c.want == "" && (err != nil || string(got) != c.in):
				t.Fatalf("read %q, %v; want all of it", got, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) ||
				!errors.Is(err, channel.ErrBadStatement) || !errors.Is(err, channel.ErrStatementTooLarge)):
				t.Fatalf("err %v; want one naming %q, wrapping ErrBadStatement and ErrStatementTooLarge", err, c.want)
			}
		})
	}
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestLineScannerNamesTheLongLine(t *testing.T) {
	sc := channel.NewLineScanner(strings.NewReader("ok\n"+strings.Repeat("x", 100)+"\n"), 64)
	for sc.Scan() {
	}
	if err := sc.Err(); err == nil || !errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), "line 2 is longer than 64 bytes") {
		t.Fatalf("err %v", err)
	}
	// A cap hit while scanning keeps its own words and the line.
	sc = channel.NewLineScanner(channel.StatementLimits{MaxLines: 1}.Reader(strings.NewReader("a\nb\nc\n")), 64)
	for sc.Scan() {
	}
	if err := sc.Err(); !errors.Is(err, channel.ErrStatementTooLarge) || !strings.Contains(err.Error(), "statements.max_lines") {
		t.Fatalf("err %v", err)
	}
}

func TestSplitCSVLineBoundsFields(t *testing.T) {
	long := strings.Repeat("y", channel.MaxCSVField+1)
	for _, line := range []string{"a," + long + ",c", `a,"` + long + `",c`} {
		_, err := channel.SplitCSVLine(nil, line)
		if !errors.Is(err, channel.ErrCSVField) || !strings.Contains(err.Error(), "field 2 has") {
			t.Errorf("err %v", err)
		}
	}
	if f, err := channel.SplitCSVLine(nil, "a,"+long[1:]+",c"); err != nil || len(f) != 3 {
		t.Errorf("a field at the bound: %d fields, %v", len(f), err)
	}
}

func TestSecureLink(t *testing.T) {
	cases := []struct {
		link     string
		insecure bool
		want     string
	}{
		{"http://dwbillcenter.alipay.com/downloadBillFile.resource?bizType=trade&userId=1", false, "https://dwbillcenter.alipay.com/downloadBillFile.resource?bizType=trade&userId=1"},
		{"http://127.0.0.1:8080/bill?x=1", true, "http://127.0.0.1:8080/bill?x=1"},
		{"https://a.example/b", false, "https://a.example/b"},
		{"ftp://a.example/b", false, ""},
		{"/relative", true, ""},
	}
	for _, c := range cases {
		u, err := channel.SecureLink(c.link, c.insecure)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: %s, want an error", c.link, u)
			}
			continue
		}
		if err != nil || u.String() != c.want {
			t.Errorf("%s (insecure %v): %v, %v; want %s", c.link, c.insecure, u, err, c.want)
		}
	}
}

func TestDownloadClientRedirects(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "forged") }))
	defer plain.Close()
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "elsewhere") }))
	defer other.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, plain.URL+"/bill", http.StatusFound)
		case "/to-other":
			http.Redirect(w, r, other.URL+"/bill", http.StatusFound)
		case "/to-same":
			http.Redirect(w, r, "/bill", http.StatusFound)
		default:
			_, _ = io.WriteString(w, "bill")
		}
	}))
	defer srv.Close()
	hc := srv.Client()
	hc.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true // other's certificate too
	for _, c := range []struct {
		path     string
		insecure bool
		want     string // body, or the error's words
	}{
		{"/to-same", false, "bill"},
		{"/to-http", false, "refused a redirect off https"},
		{"/to-http", true, "refused a redirect to another host"},
		{"/to-other", false, "refused a redirect to another host"},
	} {
		resp, err := channel.DownloadClient(hc, c.insecure).Get(srv.URL + c.path)
		var got string
		if err != nil {
			got = err.Error()
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got = string(b)
		}
		if !strings.Contains(got, c.want) || bytes.Contains([]byte(got), []byte("forged")) {
			t.Errorf("%s (insecure %v): %q, want %q", c.path, c.insecure, got, c.want)
		}
	}
	if hc.CheckRedirect != nil {
		t.Error("DownloadClient changed the client it copied")
	}
}
