package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// csrfCookie holds a random value per browser; a form's csrf_token is an
// HMAC of it and the user under the server's key. A forged cross-site form
// can neither read the cookie nor compute the token, SameSite=Strict keeps
// the cookie off cross-site requests, and a token is good for one user only.
const (
	csrfCookie = "recon_csrf"
	csrfField  = "csrf_token"
)

func (s *Server) csrfToken(user, cookie string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte("csrf\x00" + strings.ToLower(user) + "\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// csrfCookieValue returns the browser's CSRF cookie, setting a new one on w
// when it has none.
func (s *Server) csrfCookieValue(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"})
	return v
}

// csrfValid checks a POST's csrf_token against its cookie and user, in
// constant time.
func (s *Server) csrfValid(r *http.Request, user string) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	got := r.PostFormValue(csrfField)
	want := s.csrfToken(user, c.Value)
	return hmac.Equal([]byte(got), []byte(want))
}
