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
	for i, u := range a.Users {
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
			cost, err := bcrypt.Cost([]byte(u.PasswordHash))
			if err != nil {
				return &UserError{Index: i, Name: u.Name, Field: "password_hash", Msg: "is not a bcrypt hash"}
			}
			if cost < MinBcryptCost {
				return &UserError{Index: i, Name: u.Name, Field: "password_hash",
					Msg: fmt.Sprintf("bcrypt cost %d is below %d: hash the password again with a cost of %d or more", cost, MinBcryptCost, MinBcryptCost)}
			}
		}
	}
	return nil
}

// UserError is a problem with one entry of Auth.Users.
type UserError struct {
	Index int    // the entry's place in Users
	Name  string // its name
	Field string // the setting at fault, e.g. password_hash
	Msg   string
}

// Key names the setting: users[1] (alice).password_hash.
func (e *UserError) Key() string { return fmt.Sprintf("users[%d] (%s).%s", e.Index, e.Name, e.Field) }

func (e *UserError) Error() string { return e.Key() + ": " + e.Msg }

// authError is a refusal: the status and a message safe to show.
type authError struct {
	status int
	msg    string
	// retryAfter is the Retry-After of a 429, in seconds.
	retryAfter int
}

func (e *authError) Error() string { return e.msg }

// authenticator checks who a request comes from.
type authenticator struct {
	auth  Auth
	users map[string]User
	// verified remembers credentials bcrypt has accepted (keyed by an HMAC
	// of name and password under key), so a page's requests do not each
	// pay for bcrypt, and a browser signed in before a lockout stays in.
	key      []byte
	mu       sync.Mutex
	verified map[string]bool
	// attempts counts the sign-ins bcrypt is asked about, per user name
	// and per client address, so a password cannot be guessed at the
	// speed of bcrypt.
	attempts *attempts
	now      func() time.Time
}

// MinBcryptCost is the lowest bcrypt cost a password_hash may have: below
// it, a stolen configuration's hashes fall to a graphics card in hours.
const MinBcryptCost = 10

// Basic auth counts up to maxUserFailures failed sign-ins per user name and
// maxAddrFailures per client address in a lockoutWindow that starts at the
// first of them; past either, sign-ins wait for the window's end. The window
// is short so that a guesser can delay a user by a minute at most, not lock
// them out; the counts keep guessing at 5 passwords a minute per name. An
// office behind one address has room for many users' typos.
const (
	maxUserFailures = 5
	maxAddrFailures = 20
	lockoutWindow   = time.Minute
)

// dummyHash is compared against when the user is unknown, so that an
// unknown name costs as long as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("recon-console-dummy"), MinBcryptCost)

func newAuthenticator(a Auth, key []byte, now func() time.Time) *authenticator {
	if a.Header == "" {
		a.Header = DefaultHeader
	}
	users := map[string]User{}
	for _, u := range a.Users {
		users[strings.ToLower(strings.TrimSpace(u.Name))] = u
	}
	return &authenticator{auth: a, users: users, key: key, verified: map[string]bool{}, attempts: newAttempts(), now: now}
}

// authenticate returns the request's user, or an *authError.
func (au *authenticator) authenticate(r *http.Request) (User, error) {
	if au.auth.Mode == ModeBasic {
		return au.basic(r)
	}
	return au.proxy(r)
}

// remoteIP is the address the connection comes from.
func remoteIP(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	return ip.Unmap(), err == nil
}

func (au *authenticator) trusted(ip netip.Addr) bool {
	for _, p := range au.auth.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (au *authenticator) proxy(r *http.Request) (User, error) {
	if ip, ok := remoteIP(r); !ok || !au.trusted(ip) {
		return User{}, &authError{status: http.StatusForbidden, msg: "Sign in through the company's sign-in proxy: this address is not one it uses."}
	}
	// A proxy that adds its header without removing the client's own would
	// pass on two; which one it meant cannot be known, so neither is
	// believed.
	if len(r.Header.Values(au.auth.Header)) > 1 {
		return User{}, &authError{status: http.StatusBadRequest, msg: "The sign-in proxy sent more than one user: the request is refused. Ask the operators to make the proxy replace the " + au.auth.Header + " header, not add to it."}
	}
	name := strings.TrimSpace(r.Header.Get(au.auth.Header))
	if name == "" {
		return User{}, &authError{status: http.StatusForbidden, msg: "The sign-in proxy sent no user."}
	}
	u, ok := au.users[strings.ToLower(name)]
	if !ok {
		return User{}, &authError{status: http.StatusForbidden, msg: "You are signed in, but not a user of this console. Ask an administrator for access."}
	}
	return u, nil
}

// clientKey is the address basic-auth attempts are counted against: the
// connection's, or behind a trusted proxy (an ingress) the last address of
// X-Forwarded-For that is not one of the proxies. IPv6 clients count per
// /64, the block one subscriber usually holds.
func (au *authenticator) clientKey(r *http.Request) string {
	ip, ok := remoteIP(r)
	if !ok {
		return r.RemoteAddr
	}
	if au.trusted(ip) {
		fwd := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(fwd) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(fwd[i]))
			if err != nil {
				break
			}
			if ip = hop.Unmap(); !au.trusted(ip) {
				break
			}
		}
	}
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip.String()
}

// wrongCredentials is the answer to an unknown user and to a wrong password
// alike, so the answer does not tell which names exist.
var wrongCredentials = &authError{status: http.StatusUnauthorized, msg: "Wrong user name or password."}

func (au *authenticator) basic(r *http.Request) (User, error) {
	name, pw, ok := r.BasicAuth()
	if !ok {
		return User{}, &authError{status: http.StatusUnauthorized, msg: "Sign in with your console user name and password."}
	}
	name = strings.ToLower(strings.TrimSpace(name))
	u, known := au.users[name]
	mac := hmac.New(sha256.New, au.key)
	fmt.Fprintf(mac, "%s\x00%s\x00%s", name, u.PasswordHash, pw)
	k := string(mac.Sum(nil))
	if known {
		au.mu.Lock()
		ok = au.verified[k]
		au.mu.Unlock()
		if ok {
			return u, nil
		}
	}
	// The attempt is counted before bcrypt runs, so parallel guesses
	// cannot all pass the count while the first ones are being checked.
	keys := []string{"user\x00" + name, "addr\x00" + au.clientKey(r)}
	if wait, ok := au.attempts.reserve(au.now(), keys); !ok {
		secs := int((wait + time.Second - 1) / time.Second)
		return User{}, &authError{status: http.StatusTooManyRequests, retryAfter: secs,
			msg: fmt.Sprintf("Too many failed sign-ins for this user or from this address; try again in %d seconds.", secs)}
	}
	hash := dummyHash
	if known {
		hash = []byte(u.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pw)) != nil || !known {
		return User{}, wrongCredentials
	}
	au.attempts.refund(keys)
	au.mu.Lock()
	if len(au.verified) > 1000 {
		clear(au.verified)
	}
	au.verified[k] = true
	au.mu.Unlock()
	return u, nil
}

// attempts counts sign-in attempts per key in fixed windows of
// lockoutWindow.
type attempts struct {
	mu sync.Mutex
	m  map[string]*window
}

type window struct {
	n     int
	start time.Time
}

// maxAttemptKeys bounds the keys remembered: past it, expired windows are
// dropped before a new key is added.
const maxAttemptKeys = 10000

func newAttempts() *attempts { return &attempts{m: map[string]*window{}} }

func limitOf(key string) int {
	if strings.HasPrefix(key, "addr\x00") {
		return maxAddrFailures
	}
	return maxUserFailures
}

// reserve counts one attempt against every key and returns true, or, when
// a key's window is spent, counts nothing and returns how long until it
// ends.
func (a *attempts) reserve(now time.Time, keys []string) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		w := a.m[k]
		if w != nil && now.Sub(w.start) >= lockoutWindow {
			delete(a.m, k)
			w = nil
		}
		if w != nil && w.n >= limitOf(k) {
			wait = max(wait, w.start.Add(lockoutWindow).Sub(now))
		}
	}
	if wait > 0 {
		return wait, false
	}
	for _, k := range keys {
		w := a.m[k]
		if w == nil {
			if len(a.m) >= maxAttemptKeys {
				for k, w := range a.m {
					if now.Sub(w.start) >= lockoutWindow {
						delete(a.m, k)
					}
				}
			}
			w = &window{start: now}
			a.m[k] = w
		}
		w.n++
	}
	return 0, true
}

// refund takes back the attempts of a sign-in that succeeded: only
// failures count.
func (a *attempts) refund(keys []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range keys {
		if w := a.m[k]; w != nil && w.n > 0 {
			w.n--
		}
	}
}
