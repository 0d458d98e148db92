package wechatpay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/recon-dev/recon/channel"
)

// AuthScheme is the Authorization scheme of API v3 requests, and the
// Wechatpay-Signature-Type of the responses signed the same way.
const AuthScheme = "WECHATPAY2-SHA256-RSA2048"

// The headers carrying a response's signature.
const (
	HeaderTimestamp     = "Wechatpay-Timestamp"
	HeaderNonce         = "Wechatpay-Nonce"
	HeaderSignature     = "Wechatpay-Signature"
	HeaderSerial        = "Wechatpay-Serial"
	HeaderSignatureType = "Wechatpay-Signature-Type"
)

// MaxClockSkew is how far a signed timestamp may be from the verifier's
// clock. WeChat Pay refuses requests older than this, and recon refuses
// responses stamped further away: a replayed answer is not a fresh one.
const MaxClockSkew = 5 * time.Minute

// RequestMessage is the string a request's signature covers: the method,
// the path with its query string, the Unix timestamp, the nonce and the body,
// each followed by a newline (a GET has an empty body line).
func RequestMessage(method, uri string, timestamp int64, nonce string, body []byte) string {
	return method + "\n" + uri + "\n" + strconv.FormatInt(timestamp, 10) + "\n" + nonce + "\n" + string(body) + "\n"
}

// ResponseMessage is the string a response's signature covers: the
// Wechatpay-Timestamp and Wechatpay-Nonce headers as sent and the raw body
// (empty for 204), each followed by a newline.
func ResponseMessage(timestamp, nonce string, body []byte) string {
	return timestamp + "\n" + nonce + "\n" + string(body) + "\n"
}

// Sign returns base64(SHA256withRSA(key, message)), PKCS #1 v1.5.
func Sign(key *rsa.PrivateKey, message string) (string, error) {
	if key == nil {
		return "", errors.New("sign: no private key")
	}
	sum := sha256.Sum256([]byte(message))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifySignature checks that signature is Sign's output for message under
// the private half of key. Its errors wrap channel.ErrBadSignature and never
// quote the signature.
func VerifySignature(key *rsa.PublicKey, message, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("verify signature: not base64: %w", channel.ErrBadSignature)
	}
	sum := sha256.Sum256([]byte(message))
	if key == nil || rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) != nil {
		return fmt.Errorf("verify signature: %w", channel.ErrBadSignature)
	}
	return nil
}

// NewNonce returns a fresh random nonce of 32 upper-case hex digits, the
// shape of the documented examples.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// Authorization is the signed Authorization header of a request.
type Authorization struct {
	MchID     string // mchid: the merchant
	Nonce     string // nonce_str
	Signature string // signature: Sign over RequestMessage
	Timestamp int64  // timestamp: Unix seconds
	SerialNo  string // serial_no: the merchant API certificate's serial
}

// String renders a as the header value. WeChat Pay does not care about the
// order of the parameters.
func (a Authorization) String() string {
	return fmt.Sprintf(`%s mchid="%s",nonce_str="%s",signature="%s",timestamp="%d",serial_no="%s"`,
		AuthScheme, a.MchID, a.Nonce, a.Signature, a.Timestamp, a.SerialNo)
}

// SignRequest returns the Authorization of a request signed by merchant
// mchID with key, whose API certificate has serial number serialNo.
func SignRequest(key *rsa.PrivateKey, mchID, serialNo, method, uri string, body []byte, timestamp int64, nonce string) (Authorization, error) {
	sig, err := Sign(key, RequestMessage(method, uri, timestamp, nonce, body))
	if err != nil {
		return Authorization{}, fmt.Errorf("sign request: %w", err)
	}
	return Authorization{MchID: mchID, Nonce: nonce, Signature: sig, Timestamp: timestamp, SerialNo: serialNo}, nil
}

// ParseAuthorization parses an Authorization header value. Every one of
// mchid, nonce_str, signature, timestamp and serial_no must be present, once,
// quoted; other parameters are ignored. Errors never quote the signature.
func ParseAuthorization(header string) (Authorization, error) {
	rest, ok := strings.CutPrefix(header, AuthScheme+" ")
	if !ok {
		return Authorization{}, fmt.Errorf("parse authorization: scheme is not %s", AuthScheme)
	}
	params := map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " ,")
		if rest == "" {
			break
		}
		name, after, ok := strings.Cut(rest, `="`)
		if !ok || name == "" || strings.ContainsAny(name, ` ,"`) {
			return Authorization{}, errors.New(`parse authorization: want name="value" parameters`)
		}
		value, tail, ok := strings.Cut(after, `"`)
		if !ok {
			return Authorization{}, fmt.Errorf("parse authorization: unterminated %s", channel.Truncate(name))
		}
		if _, dup := params[name]; dup {
			return Authorization{}, fmt.Errorf("parse authorization: %s given twice", channel.Truncate(name))
		}
		params[name] = value
		rest = tail
		if rest != "" && rest[0] != ',' && rest[0] != ' ' {
			return Authorization{}, errors.New("parse authorization: parameters must be separated by commas")
		}
	}
	for _, name := range []string{"mchid", "nonce_str", "signature", "timestamp", "serial_no"} {
		if params[name] == "" {
			return Authorization{}, fmt.Errorf("parse authorization: no %s", name)
		}
	}
	ts, err := strconv.ParseInt(params["timestamp"], 10, 64)
	if err != nil {
		return Authorization{}, fmt.Errorf("parse authorization: timestamp %q is not Unix seconds", channel.Truncate(params["timestamp"]))
	}
	return Authorization{MchID: params["mchid"], Nonce: params["nonce_str"], Signature: params["signature"],
		Timestamp: ts, SerialNo: params["serial_no"]}, nil
}

// VerifyRequest checks a request's Authorization header the way WeChat Pay
// does: it parses, its signature over RequestMessage(method, uri, ...)
// verifies with the merchant's public key, and its timestamp is within
// MaxClockSkew of now. Checking mchid and serial_no against the merchant is
// the caller's business. Errors wrap channel.ErrBadSignature.
func VerifyRequest(key *rsa.PublicKey, header, method, uri string, body []byte, now time.Time) (Authorization, error) {
	a, err := ParseAuthorization(header)
	if err != nil {
		return Authorization{}, fmt.Errorf("%w: %w", err, channel.ErrBadSignature)
	}
	if err := VerifySignature(key, RequestMessage(method, uri, a.Timestamp, a.Nonce, body), a.Signature); err != nil {
		return Authorization{}, fmt.Errorf("verify request: %w", err)
	}
	if err := checkSkew(a.Timestamp, now); err != nil {
		return Authorization{}, fmt.Errorf("verify request: %w", err)
	}
	return a, nil
}

// checkSkew refuses a signed timestamp more than MaxClockSkew from now.
func checkSkew(ts int64, now time.Time) error {
	d := now.Sub(time.Unix(ts, 0))
	if d > MaxClockSkew || d < -MaxClockSkew {
		return fmt.Errorf("timestamp %d is %s away from now, more than %s: %w",
			ts, d.Round(time.Second), MaxClockSkew, channel.ErrBadSignature)
	}
	return nil
}

// SignResponse signs a response body as WeChat Pay does, with the platform
// key announced as keyID, setting the Wechatpay-* headers in h.
func SignResponse(h http.Header, key *rsa.PrivateKey, keyID string, timestamp int64, nonce string, body []byte) error {
	ts := strconv.FormatInt(timestamp, 10)
	sig, err := Sign(key, ResponseMessage(ts, nonce, body))
	if err != nil {
		return fmt.Errorf("sign response: %w", err)
	}
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderNonce, nonce)
	h.Set(HeaderSignature, sig)
	h.Set(HeaderSerial, keyID)
	h.Set(HeaderSignatureType, AuthScheme)
	return nil
}

// Verifier checks the signature of WeChat Pay's responses with the WeChat
// Pay public key (or platform certificate key) known as KeyID.
type Verifier struct {
	// KeyID is the public key ID (PUB_KEY_ID_…) or platform certificate
	// serial that responses must announce in Wechatpay-Serial.
	KeyID string
	// Key verifies the signatures.
	Key *rsa.PublicKey
	// Now is the clock timestamps are checked against (default: the system
	// clock).
	Now func() time.Time
}

// Verify checks a response's headers and raw body: Wechatpay-Serial must be
// KeyID, the signature over ResponseMessage must verify with Key, and
// Wechatpay-Timestamp must be within MaxClockSkew of now. Every error wraps
// channel.ErrBadSignature; none quotes the signature.
func (v Verifier) Verify(h http.Header, body []byte) error {
	get := func(name string) (string, error) {
		s := strings.TrimSpace(h.Get(name))
		if s == "" {
			return "", fmt.Errorf("verify response: no %s header: %w", name, channel.ErrBadSignature)
		}
		return s, nil
	}
	serial, err := get(HeaderSerial)
	if err != nil {
		return err
	}
	if serial != v.KeyID {
		return fmt.Errorf("verify response: %s %q is not the configured public_key_id %q: %w",
			HeaderSerial, channel.Truncate(serial), v.KeyID, channel.ErrBadSignature)
	}
	if t := h.Get(HeaderSignatureType); t != "" && t != AuthScheme {
		return fmt.Errorf("verify response: %s %q is not %s: %w", HeaderSignatureType, channel.Truncate(t), AuthScheme, channel.ErrBadSignature)
	}
	tsText, err := get(HeaderTimestamp)
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("verify response: %s %q is not Unix seconds: %w", HeaderTimestamp, channel.Truncate(tsText), channel.ErrBadSignature)
	}
	nonce, err := get(HeaderNonce)
	if err != nil {
		return err
	}
	sig, err := get(HeaderSignature)
	if err != nil {
		return err
	}
	if err := VerifySignature(v.Key, ResponseMessage(tsText, nonce, body), sig); err != nil {
		return fmt.Errorf("verify response: %w", err)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if err := checkSkew(ts, now()); err != nil {
		return fmt.Errorf("verify response: stale %s: %w", HeaderTimestamp, err)
	}
	return nil
}
