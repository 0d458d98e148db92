package httpjson

import (
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// FuzzParseResponse feeds arbitrary bodies to ParseResponse: it must never
// panic, and whatever it accepts must be a well-formed result.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(paidBody), "ORD-7")
	f.Add([]byte(`{"code":"1004","msg":"order not exist"}`), "ORD-7")
	f.Add([]byte(`{"code":"0000","data":{"order":"x","status":"PAID","amount":-1}}`), "x")
	f.Fuzz(func(t *testing.T, body []byte, orderNo string) {
		r, err := ParseResponse(body, orderNo, Config{})
		if err != nil {
			if r != (recon.LookupResult{}) {
				t.Errorf("error %v with a non-zero result %+v", err, r)
			}
			if len(err.Error()) > 4*channel.MaxSnippet+len(orderNo)*4+400 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			return
		}
		if !r.Status.Valid() {
			t.Fatalf("accepted invalid status %q", r.Status)
		}
		if r.Amount < 0 {
			t.Errorf("accepted negative amount %d", r.Amount)
		}
		if r.Currency != "" && !recon.ValidCurrency(r.Currency) {
			t.Errorf("accepted currency %q", r.Currency)
		}
		if r.PaidAt != nil && r.PaidAt.Location().String() != "UTC" {
			t.Errorf("paid_at %s not in UTC", r.PaidAt)
		}
	})
}
