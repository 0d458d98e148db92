package channel_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recon-dev/recon/channel"
)

func TestSnippet(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", channel.MaxSnippet)
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"nil", nil, "empty body"},
		{"empty", []byte{}, "empty body"},
		{"short", []byte(`{"code":"0000"}`), `body "{\"code\":\"0000\"}"`},
		{"control bytes are escaped", []byte("a\nb\x00"), `body "a\nb\x00"`},
		{"exactly the bound", []byte(long), fmt.Sprintf("body %q", long)},
		{"one byte over is cut", []byte(long + "y"), fmt.Sprintf("body %q...", long)},
		{"far over is cut", []byte(long + strings.Repeat("y", 5000)), fmt.Sprintf("body %q...", long)},
		{"the bound is in bytes", []byte(strings.Repeat("é", channel.MaxSnippet)), fmt.Sprintf("body %q...", strings.Repeat("é", channel.MaxSnippet/2))},
	} {
		if got := channel.Snippet(tc.body); got != tc.want {
			t.Errorf("%s: Snippet = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", channel.MaxSnippet)
	for _, tc := range []struct {
		name, s, want string
	}{
		{"empty", "", ""},
		{"short", "TRADE_SUCCESS", "TRADE_SUCCESS"},
		{"exactly the bound", long, long},
		{"one byte over is cut", long + "y", long + "..."},
		{"far over is cut", long + strings.Repeat("y", 5000), long + "..."},
		// 66 three-byte characters are 198 bytes: the 67th would end at 201.
		{"cut between characters", strings.Repeat("订", 70), strings.Repeat("订", 66) + "..."},
		{"invalid UTF-8 replaced", "bad \xff\xfe byte", "bad \uFFFD byte"},
	} {
		if got := channel.Truncate(tc.s); got != tc.want {
			t.Errorf("%s: Truncate = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestNetworkError(t *testing.T) {
	t.Parallel()
	live := context.Background()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	urlErr := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://api.example.com/v1/orders/ORD-1?token=x", Err: err}
	}
	named := func(err error) error { return fmt.Errorf("wx: query ORD-1: %w", err) }

	for _, tc := range []struct {
		name       string
		ctx        context.Context
		err        error
		annotate   func(error) error
		class      channel.Class
		classified bool // an *channel.Error, not passed through
		is         error
		msg        string
	}{
		{"refused", live, urlErr(syscall.ECONNREFUSED), nil,
			channel.ClassTransient, true, syscall.ECONNREFUSED, "transient: request: connection refused"},
		{"refused, annotated inside the class", live, urlErr(syscall.ECONNREFUSED), named,
			channel.ClassTransient, true, syscall.ECONNREFUSED, "transient: wx: query ORD-1: request: connection refused"},
		{"our per-request timeout", live, urlErr(context.DeadlineExceeded), named,
			channel.ClassTransient, true, context.DeadlineExceeded, "transient: wx: query ORD-1: request: context deadline exceeded"},
		{"body cut short", live, fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), named,
			channel.ClassTransient, true, io.ErrUnexpectedEOF, "transient: wx: query ORD-1: request: read body: unexpected EOF"},
		{"caller canceled", canceled, urlErr(context.Canceled), named,
			channel.ClassPermanent, false, context.Canceled, "wx: query ORD-1: context canceled"},
		{"caller canceled, not annotated", canceled, urlErr(context.Canceled), nil,
			channel.ClassPermanent, false, context.Canceled, "context canceled"},
		{"caller's deadline", expired, urlErr(context.DeadlineExceeded), named,
			channel.ClassTransient, false, context.DeadlineExceeded, "wx: query ORD-1: context deadline exceeded"},
	} {
		err := channel.NetworkError(tc.ctx, tc.err, tc.annotate)
		var ce *channel.Error
		if got := channel.ClassOf(err); got != tc.class {
			t.Errorf("%s: class %s, want %s (%v)", tc.name, got, tc.class, err)
		}
		if got := errors.As(err, &ce); got != tc.classified {
			t.Errorf("%s: classified %v, want %v (%v)", tc.name, got, tc.classified, err)
		}
		if !errors.Is(err, tc.is) {
			t.Errorf("%s: %v does not wrap %v", tc.name, err, tc.is)
		}
		if err.Error() != tc.msg {
			t.Errorf("%s: message %q, want %q", tc.name, err.Error(), tc.msg)
		}
	}
}

func TestParseBaseURLNeverQuotesTheValue(t *testing.T) {
	for _, s := range []string{"user:hunter2@bank.example/api", "http//user:hunter2@x", "ftp://user:hunter2@x", "%zzhunter2", "hunter2"} {
		if _, err := channel.ParseBaseURL(s); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("channel.ParseBaseURL(%q) = %v: want an error that does not quote the value", s, err)
		}
	}
	if u, err := channel.ParseBaseURL("https://api.example/v1"); err != nil || u.Host != "api.example" {
		t.Fatalf("good URL: %v %v", u, err)
	}
}
