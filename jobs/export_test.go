package jobs

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
)

// RefusedIP exposes the notify destination rule to the tests.
var RefusedIP = refusedIP

// NewNotifyClientWith is NewNotifyClient refusing what refuse refuses,
// resolving names with r and using proxy instead of the environment's.
func NewNotifyClientWith(refuse func(netip.Addr) string, r *net.Resolver, proxy func(*http.Request) (*url.URL, error)) *http.Client {
	c := NewNotifyClient(4, false)
	c.Transport = notifyTransport(false, refuse, r, proxy)
	return c
}
