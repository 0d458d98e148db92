package jobs

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// notifyTransport returns the transport merchant notifications go out on.
// Unless allowPrivate (notify.allow_private_networks), it refuses to connect
// to an address that is not a public unicast address (refusedIP). The check
// runs at connect time, on the address the name resolved to, so a notify_url
// whose name resolves to an internal address, or changes its answer between
// two requests (a redirect), is refused too, and nothing is sent.
//
// An HTTP proxy from the environment (HTTPS_PROXY, ...) is the operator's own
// and may sit on a private address: for a request handed to it, the
// destination's addresses are checked before (the proxy resolves the name
// again; its own egress rules are the second line there), and only the dial
// to the proxy skips the check. The proxy's address is no exempt
// destination: a request that goes direct (a plain http URL when only
// HTTPS_PROXY is set, a NO_PROXY host) to it is refused like any other.
func notifyTransport(allowPrivate bool, refuse func(netip.Addr) string, resolver *net.Resolver,
	envProxy func(*http.Request) (*url.URL, error)) *guardedTransport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = envProxy
	if allowPrivate {
		return &guardedTransport{Transport: tr}
	}
	g := &destGuard{refuse: refuse, resolver: resolver}
	checked := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver, Control: g.control}
	plain := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver}
	// The proxy was chosen once, in RoundTrip; the transport follows that
	// choice.
	tr.Proxy = func(req *http.Request) (*url.URL, error) {
		u, _ := req.Context().Value(viaProxy{}).(*url.URL)
		return u, nil
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		// A dial carries the context of the request that asked for it, and
		// the transport pools a proxy's connections apart from direct ones.
		if u, _ := ctx.Value(viaProxy{}).(*url.URL); u != nil && addr == proxyAddr(u) {
			return plain.DialContext(ctx, network, addr)
		}
		return checked.DialContext(ctx, network, addr)
	}
	return &guardedTransport{Transport: tr, envProxy: envProxy, guard: g}
}

// guardedTransport is the notify transport: it chooses each request's proxy
// and, through a proxy, checks the destination before the request goes out.
// Without a guard it is the plain transport.
type guardedTransport struct {
	*http.Transport
	envProxy func(*http.Request) (*url.URL, error)
	guard    *destGuard
}

// viaProxy is the context key of the proxy a request was handed to.
type viaProxy struct{}

// RoundTrip sends req direct or through the environment's proxy for it.
func (t *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.guard == nil {
		return t.Transport.RoundTrip(req)
	}
	var u *url.URL
	var err error
	if t.envProxy != nil {
		u, err = t.envProxy(req)
	}
	if err == nil && u != nil {
		err = t.guard.checkName(req.Context(), req.URL.Hostname())
	}
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	// Always set, so that a direct request never carries a proxy along.
	return t.Transport.RoundTrip(req.WithContext(context.WithValue(req.Context(), viaProxy{}, u)))
}

// destGuard refuses destinations for the notify transport.
type destGuard struct {
	refuse   func(netip.Addr) string
	resolver *net.Resolver
}

// refusedError is a destination the notify transport will not connect to.
type refusedError struct {
	addr netip.Addr
	why  string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s address (set notify.allow_private_networks to allow it)", e.addr, e.why)
}

// control runs after the name was resolved, before each connection attempt.
func (g *destGuard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused to connect to %q: not an IP address", address)
	}
	if why := g.refuse(ap.Addr()); why != "" {
		return &refusedError{addr: ap.Addr().Unmap(), why: why}
	}
	return nil
}

// checkName resolves host and refuses it if any of its addresses is refused.
func (g *destGuard) checkName(ctx context.Context, host string) error {
	r := g.resolver
	if r == nil {
		r = net.DefaultResolver
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ips, err := r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return err
		}
		addrs = ips
	}
	for _, a := range addrs {
		if why := g.refuse(a); why != "" {
			return &refusedError{addr: a.Unmap(), why: why}
		}
	}
	return nil
}

// proxyAddr is the host:port the transport dials for proxy u.
func proxyAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "socks5", "socks5h":
			port = "1080"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

var (
	sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT, cloud-internal ranges
	thisNetwork        = netip.MustParsePrefix("0.0.0.0/8")
	reservedV4         = netip.MustParsePrefix("240.0.0.0/4") // and the broadcast address
	protocolV4         = netip.MustParsePrefix("192.0.0.0/24")
	benchmarkV4        = netip.MustParsePrefix("198.18.0.0/15")
	nat64              = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local         = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour          = netip.MustParsePrefix("2002::/16")
	v4Compatible       = netip.MustParsePrefix("::/96")
)

// refusedIP says why a notification may not go to a, or "" when a is a
// public unicast address. IPv4-mapped IPv6 addresses are judged as the IPv4
// address they carry, and so are NAT64 and 6to4 addresses, which reach it.
func refusedIP(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			if why := refusedIP(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); why != "" {
				return why + " (NAT64)"
			}
		case nat64Local.Contains(a):
			return "local-use NAT64"
		case sixToFour.Contains(a):
			if why := refusedIP(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); why != "" {
				return why + " (6to4)"
			}
		}
	}
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified() || thisNetwork.Contains(a):
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate(): // 10/8, 172.16/12, 192.168/16, fc00::/7
		return "private"
	case a.IsLinkLocalUnicast(): // 169.254/16 (cloud metadata), fe80::/10
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	case v4Compatible.Contains(a):
		return "reserved (IPv4-compatible)"
	case sharedAddressSpace.Contains(a):
		return "shared (carrier-grade NAT)"
	case reservedV4.Contains(a) || protocolV4.Contains(a) || benchmarkV4.Contains(a):
		return "reserved"
	}
	return ""
}
