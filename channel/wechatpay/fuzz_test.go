package wechatpay_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/wechatpay"
)

// maxErrLen bounds an error about a body: the body quote, the order number
// quoted twice and the text around them.
func maxErrLen(orderNo string) int { return 4*200 + 8*len(orderNo) + 600 }

// FuzzParseTransaction feeds arbitrary bodies to ParseTransaction: it must
// never panic, refuse with a bounded ErrMalformed, and accept only
// well-formed results.
func FuzzParseTransaction(f *testing.F) {
	f.Add([]byte(paidBody("W-1")), "W-1")
	f.Fuzz(func(t *testing.T, body []byte, orderNo string) {
		r, err := wechatpay.ParseTransaction(body, orderNo, testMch)
		if err != nil {
			if r != (recon.LookupResult{}) || !errors.Is(err, channel.ErrMalformed) {
				t.Fatalf("error %v with result %+v", err, r)
			}
			if len(err.Error()) > maxErrLen(orderNo) {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			return
		}
		switch {
		case !r.Status.Valid() || r.Status == recon.ChannelNotFound:
			t.Fatalf("accepted status %q", r.Status)
		case r.Amount < 0:
			t.Errorf("accepted amount %d", r.Amount)
		case r.Currency != "" && !recon.ValidCurrency(r.Currency):
			t.Errorf("accepted currency %q", r.Currency)
		case r.Status == recon.ChannelPaid && r.TxnID == "":
			t.Errorf("paid without a transaction id")
		case r.PaidAt != nil && (r.Status != recon.ChannelPaid || r.PaidAt.Location() != time.UTC):
			t.Errorf("paid_at %v on %s", r.PaidAt, r.Status)
		}
	})
}

// FuzzParseAPIError feeds arbitrary bodies to ParseAPIError.
func FuzzParseAPIError(f *testing.F) {
	f.Add([]byte(`{"code":"ORDER_NOT_EXIST","message":"订单不存在"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := wechatpay.ParseAPIError(body)
		switch {
		case err != nil && !errors.Is(err, channel.ErrMalformed):
			t.Fatalf("error %v is not ErrMalformed", err)
		case err != nil && len(err.Error()) > maxErrLen(""):
			t.Errorf("error is %d bytes long", len(err.Error()))
		case err == nil && e.Code == "":
			t.Errorf("accepted an error without code")
		}
	})
}

// FuzzParseAuthorization feeds arbitrary headers to ParseAuthorization:
// what it accepts renders back to the same parameters.
func FuzzParseAuthorization(f *testing.F) {
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="N",timestamp="1554208460",serial_no="S",signature="c2ln"`)
	f.Fuzz(func(t *testing.T, header string) {
		a, err := wechatpay.ParseAuthorization(header)
		if err != nil {
			if len(err.Error()) > maxErrLen("") {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			return
		}
		if a.MchID == "" || a.Nonce == "" || a.Signature == "" || a.SerialNo == "" {
			t.Fatalf("accepted %q as %+v", header, a)
		}
		if b, err := wechatpay.ParseAuthorization(a.String()); err != nil || b != a {
			t.Errorf("%+v renders as %q, which parses to %+v, %v", a, a.String(), b, err)
		}
	})
}

// fuzzNow is the clock of FuzzVerifyResponse: its seed answers were signed
// then with the documented test key.
var fuzzNow = time.Unix(1722850421, 0)

// FuzzVerifyResponse feeds arbitrary signature headers and bodies to
// Verifier.Verify: it must never panic, every refusal is ErrBadSignature,
// and only the genuinely signed seed answer is accepted.
func FuzzVerifyResponse(f *testing.F) {
	key, err := channel.ReadRSAPrivateKey(filepath.Join("testdata", "doc_test_key.pem"))
	if err != nil {
		f.Fatal(err)
	}
	const keyID, nonce = "PUB_KEY_ID_0000000000000024101100397200000006", "d824f2e086d3c1df967785d13fcd22ef"
	body := []byte(`{"code_url":"weixin://wxpay/bizpayurl?pr=JyC91EIz1"}`)
	h := http.Header{}
	if err := wechatpay.SignResponse(h, key, keyID, fuzzNow.Unix(), nonce, body); err != nil {
		f.Fatal(err)
	}
	f.Add(h.Get(wechatpay.HeaderTimestamp), nonce, h.Get(wechatpay.HeaderSignature), keyID, body)
	v := wechatpay.Verifier{KeyID: keyID, Key: &key.PublicKey, Now: func() time.Time { return fuzzNow }}
	f.Fuzz(func(t *testing.T, ts, n, sig, serial string, b []byte) {
		h := http.Header{}
		h.Set(wechatpay.HeaderTimestamp, ts)
		h.Set(wechatpay.HeaderNonce, n)
		h.Set(wechatpay.HeaderSignature, sig)
		h.Set(wechatpay.HeaderSerial, serial)
		err := v.Verify(h, b)
		if err != nil {
			if !errors.Is(err, channel.ErrBadSignature) {
				t.Fatalf("refusal %v is not ErrBadSignature", err)
			}
			// Errors quote the serial, the timestamp and the key ID, never
			// the signature.
			quoted := serial + "\x00" + ts + "\x00" + keyID
			if len(sig) >= 32 && !strings.Contains(quoted, sig) && strings.Contains(err.Error(), sig) {
				t.Errorf("error quotes the signature: %v", err)
			}
			return
		}
		if string(b) != string(body) || strings.TrimSpace(n) != nonce || strings.TrimSpace(serial) != keyID {
			t.Errorf("accepted a forgery: ts %q nonce %q serial %q body %q", ts, n, serial, b)
		}
	})
}

// FuzzParseBill feeds arbitrary trade bills to ParseBill: it must never
// panic, every error is a bad statement, and a file it accepts has valid
// lines counted in its totals.
func FuzzParseBill(f *testing.F) {
	for _, name := range []string{"tradebill_all.csv", "tradebill_old.csv"} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		channeltest.CheckStatementParse(t, func(emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
			return wechatpay.ParseBill(bytes.NewReader(data), wechatpay.BillCheck{Day: "2026-11-30"}, emit)
		})
	})
}

// FuzzParseRefund feeds arbitrary bodies to ParseRefund: it must never
// panic, refuse with a bounded ErrMalformed, and accept only storable
// answers about the refund asked for.
func FuzzParseRefund(f *testing.F) {
	f.Add([]byte(`{"amount":{"currency":"CNY","refund":1,"total":1},"out_refund_no":"R-1","out_trade_no":"O-1","refund_id":"5000","status":"SUCCESS","success_time":"2021-03-26T14:52:11+08:00"}`), "R-1", "O-1")
	f.Add([]byte(`{"out_refund_no":"R-1","status":"ABNORMAL","user_received_account":"招商银行信用卡0403"}`), "R-1", "")
	f.Fuzz(func(t *testing.T, body []byte, refundNo, orderNo string) {
		r, err := wechatpay.ParseRefund(body, refundNo, orderNo)
		if err != nil {
			if r != (recon.RefundLookup{}) || !errors.Is(err, channel.ErrMalformed) {
				t.Fatalf("error %v with answer %+v", err, r)
			}
			if len(err.Error()) > maxErrLen(refundNo+orderNo) {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			return
		}
		switch {
		case !r.Status.Valid() || r.Status == recon.RefundChannelNotFound:
			t.Fatalf("accepted status %q", r.Status)
		case r.Amount < 0:
			t.Errorf("accepted amount %d", r.Amount)
		case r.Currency != "" && !recon.ValidCurrency(r.Currency):
			t.Errorf("accepted currency %q", r.Currency)
		case r.Status == recon.RefundChannelSucceeded && r.ChannelRefundID == "":
			t.Errorf("succeeded without a refund id")
		case r.SucceededAt != nil && (r.Status != recon.RefundChannelSucceeded || r.SucceededAt.Location() != time.UTC):
			t.Errorf("succeeded_at %v on %s", r.SucceededAt, r.Status)
		}
		var rf wechatpay.Refund
		if json.Unmarshal(body, &rf) != nil || rf.OutRefundNo != refundNo {
			t.Errorf("accepted an answer not about refund %q", refundNo)
		}
	})
}
