package recon_test

import (
	"errors"
	"testing"
	"time"

	"github.com/recon-dev/recon"
)

func TestSignatureRoundTripAndTamper(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"id":"ntf_1","event":"order.paid","data":{"amount":100}}`)
	h := recon.SignPayload("s3cret", at, body)
	if err := recon.VerifySignature("s3cret", h, body, at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("verify own signature: %v", err)
	}
	cases := []struct {
		name, secret, header string
		body                 []byte
		now                  time.Time
		want                 error
	}{
		{"tampered body", "s3cret", h, []byte(`{"id":"ntf_1","event":"order.paid","data":{"amount":1}}`), at, recon.ErrSignatureMismatch},
		{"wrong secret", "other", h, body, at, recon.ErrSignatureMismatch},
		{"replayed late", "s3cret", h, body, at.Add(time.Hour), recon.ErrSignatureExpired},
		{"no v1", "s3cret", "t=1", body, at, recon.ErrSignatureMalformed},
		{"garbage", "s3cret", "nonsense", body, at, recon.ErrSignatureMalformed},
	}
	for _, c := range cases {
		if err := recon.VerifySignature(c.secret, c.header, c.body, c.now, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// A rotated secret: either of two v1 values may match.
	old := recon.SignPayload("old", at, body)
	both := h + "," + old[len("t=1795435200,"):]
	if err := recon.VerifySignature("old", both, body, at, 0); err != nil {
		t.Fatalf("second v1 not accepted: %v (%s)", err, both)
	}
}
