package httpjson

import (
	"encoding/json"
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

// FuzzParseRefundResponse feeds arbitrary bodies to ParseRefundResponse: it
// must never panic, and whatever it accepts must be a storable answer about
// the refund asked for.
func FuzzParseRefundResponse(f *testing.F) {
	f.Add([]byte(`{"code":"0000","data":{"refund":"RF-1","order":"ORD-7","status":"SUCCEEDED","amount":100,"currency":"cny","refund_txn_id":"T1","succeeded_at":"2026-01-02T03:04:05+08:00"}}`), "RF-1", "ORD-7")
	f.Add([]byte(`{"code":"1004","msg":"refund not exist"}`), "RF-1", "")
	f.Add([]byte(`{"code":"0000","data":{"refund":"RF-1","status":"PENDING"}}`), "RF-1", "ORD-7")
	f.Add([]byte(`{"code":"0000","data":{"refund":"x","status":"SUCCEEDED","amount":-1}}`), "x", "")
	f.Fuzz(func(t *testing.T, body []byte, refundNo, orderNo string) {
		r, err := ParseRefundResponse(body, refundNo, orderNo, Config{})
		if err != nil {
			if r != (recon.RefundLookup{}) {
				t.Errorf("error %v with a non-zero answer %+v", err, r)
			}
			if len(err.Error()) > 4*channel.MaxSnippet+(len(refundNo)+len(orderNo))*4+400 {
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
		if r.SucceededAt != nil && r.SucceededAt.Location().String() != "UTC" {
			t.Errorf("succeeded_at %s not in UTC", r.SucceededAt)
		}
		if r.Status != recon.RefundChannelNotFound {
			var resp RefundResponse
			if json.Unmarshal(body, &resp) != nil || resp.Data == nil || resp.Data.Refund != refundNo {
				t.Errorf("accepted an answer not about refund %q: %s", refundNo, body)
			}
		}
	})
}
