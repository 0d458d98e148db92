package jobs_test

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

func TestRefusedIP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ip, why string
	}{
		{"127.0.0.1", "loopback"}, {"127.8.9.10", "loopback"}, {"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"}, {"10.0.0.1", "private"}, {"172.16.5.4", "private"},
		{"192.168.1.1", "private"}, {"fc00::1", "private"}, {"fd12:3456::1", "private"},
		{"169.254.169.254", "link-local"}, {"::ffff:169.254.169.254", "link-local"}, {"fe80::1", "link-local"},
		{"224.0.0.1", "multicast"}, {"ff02::1", "multicast"}, {"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"}, {"::", "unspecified"}, {"100.64.0.1", "shared (carrier-grade NAT)"},
		{"100.127.255.254", "shared (carrier-grade NAT)"}, {"255.255.255.255", "reserved"},
		{"64:ff9b::a9fe:a9fe", "link-local (NAT64)"}, {"2002:7f00:1::1", "loopback (6to4)"},
		{"::7f00:1", "reserved (IPv4-compatible)"},
		{"93.184.215.14", ""}, {"8.8.8.8", ""}, {"100.128.0.1", ""}, {"2606:4700::1111", ""},
		{"::ffff:8.8.8.8", ""}, {"64:ff9b::808:808", ""}, {"172.32.0.1", ""},
	} {
		if got := jobs.RefusedIP(netip.MustParseAddr(tc.ip)); got != tc.why {
			t.Errorf("RefusedIP(%s) = %q, want %q", tc.ip, got, tc.why)
		}
	}
}

// A notify_url that is, or resolves to, an internal address is refused when
// connecting: the attempt fails with a last_error naming the address and no
// request reaches the server. notify.allow_private_networks lets it through.
func TestNotifyRefusesInternalDestinations(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		m := newMerchant(t, e.clock)
		port := m.srv.Listener.Addr().(*net.TCPAddr).Port
		targets := map[string]struct{ url, want string }{
			"m-ip":        {m.url(), "refused to connect to 127.0.0.1: loopback address"},
			"m-localhost": {strings.Replace(m.url(), "127.0.0.1", "localhost", 1), "loopback address"},
			"m-metadata":  {"http://169.254.169.254/latest/meta-data/", "refused to connect to 169.254.169.254: link-local address"},
			"m-private":   {"http://10.1.2.3:" + strconv.Itoa(port) + "/notify", "refused to connect to 10.1.2.3: private address"},
			"m-mapped":    {"http://[::ffff:127.0.0.1]:" + strconv.Itoa(port) + "/notify", "refused to connect to 127.0.0.1: loopback address"},
		}
		ids := map[string]string{}
		for id, tg := range targets {
			e.addMerchant(id, tg.url, merchantSecret)
			ids[id] = e.seed(id, 1)[0]
		}
		d := e.dispatcher(db.Store, "d1")
		d.AllowPrivateNetworks = false
		res := e.run(d)
		if res.Retried != int64(len(targets)) || res.Delivered != 0 {
			t.Fatalf("pass %+v: want every attempt failed", res)
		}
		if n := m.total.Load(); n != 0 {
			t.Fatalf("the loopback merchant received %d posts", n)
		}
		for id, tg := range targets {
			n := e.get(ids[id])
			if n.Status != repo.NotifyPending || n.Attempts != 1 || !strings.Contains(n.LastError, tg.want) {
				t.Errorf("%s (%s): status %s, attempts %d, last_error %q; want a failed attempt saying %q",
					id, tg.url, n.Status, n.Attempts, n.LastError, tg.want)
			}
		}

		// Allowed, the loopback merchant is reached.
		e.addMerchant("m-ok", m.url(), merchantSecret)
		okID := e.seed("m-ok", 1)[0]
		d = e.dispatcher(db.Store, "d2")
		d.AllowPrivateNetworks = true
		e.run(d)
		if n := e.get(okID); n.Status != repo.NotifyDelivered || m.count(okID) != 1 {
			t.Fatalf("allowed loopback merchant: status %s, posts %d", n.Status, m.count(okID))
		}
		m.check()
	})
}

// A name that resolves to a permitted address first and to an internal one
// on the next look-up (DNS rebinding) cannot reach the internal one through
// a redirect: every connection is checked, the redirected one too.
func TestNotifyRefusesRedirectToInternalAddress(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		var outside, inside atomic.Int64
		// The "outside" server, on 127.0.0.2, redirects to the same URL
		// path on the same host and port; the "inside" one, on 127.0.0.1
		// and the same port, must never be reached.
		out := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			outside.Add(1)
			w.Header().Set("Connection", "close")
			http.Redirect(w, r, "/internal", http.StatusTemporaryRedirect)
		}))
		ln, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Skipf("cannot listen on 127.0.0.2: %v", err)
		}
		out.Listener = ln
		out.Start()
		defer out.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		in := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inside.Add(1) }))
		ln2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Skipf("port %d is taken on 127.0.0.1: %v", port, err)
		}
		in.Listener = ln2
		in.Start()
		defer in.Close()

		var lookups atomic.Int64
		resolver := fakeDNS(t, func() netip.Addr {
			if lookups.Add(1) == 1 {
				return netip.MustParseAddr("127.0.0.2")
			}
			return netip.MustParseAddr("127.0.0.1")
		})
		// Only 127.0.0.1 stands for the internal network here, so that the
		// first hop can connect at all.
		refuse := func(a netip.Addr) string {
			if a.Unmap() == netip.MustParseAddr("127.0.0.1") {
				return "loopback"
			}
			return ""
		}
		e.addMerchant("m-rebind", "http://merchant.example.com:"+strconv.Itoa(port)+"/notify", merchantSecret)
		id := e.seed("m-rebind", 1)[0]
		d := e.dispatcher(db.Store, "d1")
		d.AllowPrivateNetworks = false
		d.Client = jobs.NewNotifyClientWith(refuse, resolver, nil)
		e.run(d)
		n := e.get(id)
		if outside.Load() != 1 || inside.Load() != 0 {
			t.Fatalf("posts: outside %d, inside %d; want 1 and 0", outside.Load(), inside.Load())
		}
		if n.Status != repo.NotifyPending || n.Attempts != 1 || !strings.Contains(n.LastError, "refused to connect to 127.0.0.1") {
			t.Fatalf("row after the redirect: status %s, attempts %d, last_error %q", n.Status, n.Attempts, n.LastError)
		}
	})
}

// fakeDNS returns a resolver whose every A question is answered with next()
// and every other question with no records, by a DNS server on loopback.
func fakeDNS(t *testing.T, next func() netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], next); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// dnsAnswer answers one DNS query: its question, and for type A one record
// holding next().
func dnsAnswer(q []byte, next func() netip.Addr) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	question := q[12 : i+5]
	resp := append([]byte{}, q[0:2]...)
	resp = append(resp, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0) // response, RD, RA; 1 question
	resp = append(resp, question...)
	if qtype == 1 {
		binary.BigEndian.PutUint16(resp[6:8], 1)
		a := next().As4()
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
		resp = append(resp, a[:]...)
	}
	return resp
}

// Through a proxy (HTTPS_PROXY and the like), which may sit on a private
// address, the destination is checked before the request is handed over.
func TestNotifyThroughProxyChecksTheDestination(t *testing.T) {
	t.Parallel()
	proxy, seen := recordingProxy(t)
	proxyURL, _ := url.Parse(proxy.URL)
	post := poster(jobs.NewNotifyClientWith(jobs.RefusedIP, nil, http.ProxyURL(proxyURL)))
	if err := post("http://169.254.169.254/latest/meta-data/"); err == nil || !strings.Contains(err.Error(), "refused to connect to 169.254.169.254") {
		t.Fatalf("metadata address through the proxy: %v", err)
	}
	if err := post("http://93.184.215.14/notify"); err != nil {
		t.Fatalf("public address through a proxy on loopback: %v", err)
	}
	if seen := seen(); len(seen) != 1 || seen[0] != "http://93.184.215.14/notify" {
		t.Fatalf("the proxy saw %v; want only the public destination", seen)
	}
}

// The proxy's own address is no destination: only the dial to the proxy,
// for a request handed to it, skips the address check. A notify_url that
// names the proxy's address, by address or by a name, and goes direct
// (HTTPS_PROXY set, the URL plain http; or NO_PROXY) is refused like any
// other internal address, also after requests went through the proxy.
func TestNotifyProxyAddressIsNoDestination(t *testing.T) {
	t.Parallel()
	proxy, seen := recordingProxy(t)
	port := strconv.Itoa(proxy.Listener.Addr().(*net.TCPAddr).Port)
	const public = "http://93.184.215.14/notify"
	for _, proxyHost := range []string{"127.0.0.1", "localhost"} {
		proxyURL, _ := url.Parse("http://" + proxyHost + ":" + port)
		// The public destination goes through the proxy, everything else
		// direct.
		proxyFor := func(req *http.Request) (*url.URL, error) {
			if req.URL.String() == public {
				return proxyURL, nil
			}
			return nil, nil
		}
		resolver := fakeDNS(t, func() netip.Addr { return netip.MustParseAddr("127.0.0.1") })
		post := poster(jobs.NewNotifyClientWith(jobs.RefusedIP, resolver, proxyFor))
		if err := post(public); err != nil {
			t.Fatalf("proxy %s: a public address through the proxy: %v", proxyHost, err)
		}
		for _, direct := range []string{
			"http://" + proxyHost + ":" + port + "/",
			"http://127.0.0.1:" + port + "/notify",
			"http://proxy-alias.example.com:" + port + "/notify", // resolves to the proxy's address
		} {
			if err := post(direct); err == nil || !strings.Contains(err.Error(), "refused to connect to 127.0.0.1: loopback") {
				t.Errorf("proxy %s: %s, direct: %v; want refused as loopback", proxyHost, direct, err)
			}
		}
	}
	if seen := seen(); len(seen) != 2 || seen[0] != public || seen[1] != public {
		t.Fatalf("the proxy saw %v; want only the two posts to the public destination", seen)
	}
}

// recordingProxy is an HTTP proxy that answers every request 204 and
// records its URL; seen returns the URLs so far.
func recordingProxy(t *testing.T) (proxy *httptest.Server, seen func() []string) {
	t.Helper()
	var urls []string
	var mu sync.Mutex
	proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		urls = append(urls, r.URL.String())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(proxy.Close)
	return proxy, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), urls...)
	}
}

// poster returns a function that POSTs "{}" to a URL with c.
func poster(c *http.Client) func(target string) error {
	return func(target string) error {
		req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader("{}"))
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
}
