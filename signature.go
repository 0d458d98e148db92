package recon

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header carrying a notification's signature
// (CONTRACT §5).
const SignatureHeader = "Recon-Signature"

// IdempotencyHeader is the header carrying the notification id, stable
// across retries so a merchant can deduplicate.
const IdempotencyHeader = "Idempotency-Key"

// Signature errors returned by VerifySignature.
var (
	// ErrSignatureMalformed means the header is not t=<unix>,v1=<hex>.
	ErrSignatureMalformed = errors.New("malformed signature header")
	// ErrSignatureMismatch means no v1 value matches the body and secret.
	ErrSignatureMismatch = errors.New("signature does not match")
	// ErrSignatureExpired means the timestamp is outside the tolerance, a
	// possible replay.
	ErrSignatureExpired = errors.New("signature timestamp outside tolerance")
)

// SignPayload returns the Recon-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func SignPayload(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + signatureHex(secret, ts, body)
}

func signatureHex(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a Recon-Signature header against body and secret,
// as a merchant does. Several v1 values are accepted (any one matching is
// enough) so a secret can be rotated. With tolerance > 0 the timestamp must
// be within tolerance of now. It returns ErrSignatureMalformed,
// ErrSignatureMismatch or ErrSignatureExpired (wrapped).
func VerifySignature(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("verify signature: %w: part %q", ErrSignatureMalformed, part)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("verify signature: %w: want t=<unix>,v1=<hex>", ErrSignatureMalformed)
	}
	want := signatureHex(secret, ts, body)
	matched := false
	for _, s := range sigs {
		if hmac.Equal([]byte(strings.ToLower(s)), []byte(want)) {
			matched = true
		}
	}
	if !matched {
		return fmt.Errorf("verify signature: %w", ErrSignatureMismatch)
	}
	if tolerance > 0 {
		d := now.Sub(time.Unix(unix, 0))
		if d > tolerance || d < -tolerance {
			return fmt.Errorf("verify signature: %w: signed %s ago", ErrSignatureExpired, d)
		}
	}
	return nil
}
