package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Role is what a console user may do; each role may do what the ones before
// it may.
type Role int

// The roles of CONTRACT §9.
const (
	// Viewer reads and exports.
	Viewer Role = iota + 1
	// Resolver also acknowledges and resolves mismatches.
	Resolver
	// Admin also applies resolutions that change an order.
	Admin
)

// ParseRole reads viewer, resolver or admin.
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "viewer":
		return Viewer, nil
	case "resolver":
		return Resolver, nil
	case "admin":
		return Admin, nil
	}
	return 0, fmt.Errorf("role %q is not viewer, resolver or admin", s)
}

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Resolver:
		return "resolver"
	case Admin:
		return "admin"
	}
	return "none"
}

// User is one person allowed in.
type User struct {
	// Name is what the proxy's header carries (usually an e-mail address)
	// or the basic-auth user name; matched without regard to case. It is
	// what every write records.
	Name string
	Role Role
	// PasswordHash is the bcrypt hash of the password (basic mode).
	PasswordHash string
}

// Auth modes.
const (
	ModeProxy = "proxy"
	ModeBasic = "basic"
)

// DefaultHeader is the identity header oauth2-proxy sets.
const DefaultHeader = "X-Forwarded-Email"

// Auth says how users are authenticated.
type Auth struct {
	// Mode is ModeProxy (an authenticating proxy in front sets Header) or
	// ModeBasic (HTTP basic auth against PasswordHash).
	Mode string
	// Header carries the user's identity in proxy mode (default
	// X-Forwarded-Email). It is believed only from TrustedProxies.
	Header         string
	TrustedProxies []netip.Prefix
	Users          []User
}

// Validate checks the settings before the server starts.
func (a Auth) Validate() error {
	switch a.Mode {
	case ModeProxy, ModeBasic:
	default:
		return fmt.Errorf("auth mode %q is not proxy or basic", a.Mode)
	}
	if len(a.Users) == 0 {
		return errors.New("no users: nobody could sign in")
	}
	if a.Mode == ModeProxy && len(a.TrustedProxies) == 0 {
		return errors.New("proxy mode needs trusted_proxies: the identity header is believed from nobody else")
	}
	seen := map[string]bool{}
	for _, u := range a.Users {
		key := strings.ToLower(strings.TrimSpace(u.Name))
		if key == "" {
			return errors.New("a user has no name")
		}
		if seen[key] {
			return fmt.Errorf("user %q is listed twice", u.Name)
		}
		seen[key] = true
		if u.Role < Viewer || u.Role > Admin {
			return fmt.Errorf("user %q has no role", u.Name)
		}
		if a.Mode == ModeBasic {
			if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
				return fmt.Errorf("user %q: password_hash is not a bcrypt hash", u.Name)
			}
		}
	}
	return nil
}

// authError is a refusal: the status and a message safe to show.
type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

// authenticator checks who a request comes from.
type authenticator struct {
	auth  Auth
	users map[string]User
	// verified remembers credentials bcrypt has accepted (keyed by an HMAC
	// of name and password under key), so a page's requests do not each
	// pay for bcrypt.
	key      []byte
	mu       sync.Mutex
	verified map[string]bool
	// failed counts wrong passwords per user in the current window, so a
	// password cannot be guessed at the speed of bcrypt.
	failed map[string]*failures
	now    func() time.Time
}

type failures struct {
	n     int
	since time.Time
}

// Basic auth locks a user name out for lockoutWindow after maxFailures wrong
// passwords within it.
const (
	maxFailures   = 5
	lockoutWindow = 15 * time.Minute
)

// dummyHash is compared against when the user is unknown, so that an
// unknown name costs as long as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("recon-console-dummy"), bcrypt.DefaultCost)

func newAuthenticator(a Auth, key []byte, now func() time.Time) *authenticator {
	if a.Header == "" {
		a.Header = DefaultHeader
	}
	users := map[string]User{}
	for _, u := range a.Users {
		users[strings.ToLower(strings.TrimSpace(u.Name))] = u
	}
	return &authenticator{auth: a, users: users, key: key, verified: map[string]bool{}, failed: map[string]*failures{}, now: now}
}

// authenticate returns the request's user, or an *authError.
func (au *authenticator) authenticate(r *http.Request) (User, error) {
	if au.auth.Mode == ModeBasic {
		return au.basic(r)
	}
	return au.proxy(r)
}

func (au *authenticator) proxy(r *http.Request) (User, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	trusted := false
	if err == nil {
		ip = ip.Unmap()
		for _, p := range au.auth.TrustedProxies {
			trusted = trusted || p.Contains(ip)
		}
	}
	if !trusted {
		return User{}, &authError{http.StatusForbidden, "Sign in through the company's sign-in proxy: this address is not one it uses."}
	}
	// A proxy that adds its header without removing the client's own would
	// pass on two; which one it meant cannot be known, so neither is
	// believed.
	if len(r.Header.Values(au.auth.Header)) > 1 {
		return User{}, &authError{http.StatusBadRequest, "The sign-in proxy sent more than one user: the request is refused. Ask the operators to make the proxy replace the " + au.auth.Header + " header, not add to it."}
	}
	name := strings.TrimSpace(r.Header.Get(au.auth.Header))
	if name == "" {
		return User{}, &authError{http.StatusForbidden, "The sign-in proxy sent no user."}
	}
	u, ok := au.users[strings.ToLower(name)]
	if !ok {
		return User{}, &authError{http.StatusForbidden, "You are signed in, but not a user of this console. Ask an administrator for access."}
	}
	return u, nil
}

func (au *authenticator) basic(r *http.Request) (User, error) {
	name, pw, ok := r.BasicAuth()
	if !ok {
		return User{}, &authError{http.StatusUnauthorized, "Sign in with your console user name and password."}
	}
	u, known := au.users[strings.ToLower(strings.TrimSpace(name))]
	if !known {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(pw))
		return User{}, &authError{http.StatusForbidden, "This user is not allowed in this console."}
	}
	mac := hmac.New(sha256.New, au.key)
	fmt.Fprintf(mac, "%s\x00%s\x00%s", strings.ToLower(u.Name), u.PasswordHash, pw)
	k := string(mac.Sum(nil))
	au.mu.Lock()
	ok = au.verified[k]
	au.mu.Unlock()
	if !ok {
		name := strings.ToLower(u.Name)
		au.mu.Lock()
		f := au.failed[name]
		if f != nil && au.now().Sub(f.since) >= lockoutWindow {
			delete(au.failed, name)
			f = nil
		}
		locked := f != nil && f.n >= maxFailures
		au.mu.Unlock()
		if locked {
			return User{}, &authError{http.StatusTooManyRequests, "Too many wrong passwords for this user; try again in 15 minutes."}
		}
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pw)) != nil {
			au.mu.Lock()
			if f = au.failed[name]; f == nil {
				f = &failures{since: au.now()}
				au.failed[name] = f
			}
			f.n++
			au.mu.Unlock()
			return User{}, &authError{http.StatusUnauthorized, "Wrong user name or password."}
		}
		au.mu.Lock()
		if len(au.verified) > 1000 {
			clear(au.verified)
		}
		au.verified[k] = true
		au.mu.Unlock()
	}
	return u, nil
}
