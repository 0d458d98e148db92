package console

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// TestClientKey: the address sign-in attempts count against.
func TestClientKey(t *testing.T) {
	au := newAuthenticator(Auth{Mode: ModeBasic, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, nil, time.Now)
	for _, tc := range []struct {
		remote string
		fwd    []string
		want   string
	}{
		{"203.0.113.9:5000", nil, "203.0.113.9"},
		// A client's own X-Forwarded-For is not believed.
		{"203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		// Behind the trusted proxies: the last address they did not add.
		{"10.0.0.5:1", []string{"192.0.2.99, 203.0.113.50", "10.0.0.6"}, "203.0.113.50"},
		{"10.0.0.5:1", []string{"203.0.113.50,10.1.1.1"}, "203.0.113.50"},
		{"10.0.0.5:1", []string{"nonsense, 10.1.1.1"}, "10.1.1.1"},
		{"10.0.0.5:1", nil, "10.0.0.5"},
		// IPv6 per /64; IPv4 in IPv6 as IPv4.
		{"[2001:db8:1:2::7]:5000", nil, "2001:db8:1:2::"},
		{"[2001:db8:1:2:ffff::1]:5000", nil, "2001:db8:1:2::"},
		{"[::ffff:203.0.113.9]:5000", nil, "203.0.113.9"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		for _, f := range tc.fwd {
			r.Header.Add("X-Forwarded-For", f)
		}
		if got := au.clientKey(r); got != tc.want {
			t.Errorf("%s %q: %s, want %s", tc.remote, tc.fwd, got, tc.want)
		}
	}
}
