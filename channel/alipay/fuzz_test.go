package alipay_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/channeltest"
)

// maxErrLen bounds an error about an arbitrary body: the quoted pieces are
// cut at 200 bytes (and %q may quadruple them).
func maxErrLen(orderNo string) int { return 6*4*200 + 4*len(orderNo) + 400 }

// checkOpen runs a body through Open: it must not panic, and a body that was
// not signed with the gateway's key is never let through.
func checkOpen(t *testing.T, body []byte, method string) {
	k := keys(t)
	if node, err := alipay.Open(&k.AlipayKey.PublicKey, body, method); err == nil {
		t.Fatalf("Open accepted a body nobody signed: %q", node)
	} else if channel.ClassOf(err) == channel.ClassRateLimited {
		t.Fatalf("Open: rate-limited error from a 200 body: %v", err)
	}
}

// FuzzParseQuery feeds arbitrary gateway bodies to SplitResponse and
// ParseQuery (and Open): they must never panic, and whatever they accept
// must be a well-formed result about the order asked for.
func FuzzParseQuery(f *testing.F) {
	f.Add([]byte(`{"alipay_trade_query_response":{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","trade_status":"TRADE_SUCCESS","total_amount":"88.88","send_pay_date":"2024-03-01 20:00:05"},"sign":"AAAA"}`), "ORD-7")
	f.Add([]byte(`{"alipay_trade_query_response":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"},"sign":"AAAA"}`), "ORD-7")
	f.Add([]byte(`{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}`), "x")
	f.Fuzz(func(t *testing.T, body []byte, orderNo string) {
		checkOpen(t, body, alipay.MethodQuery)
		node, _, err := alipay.SplitResponse(body, alipay.MethodQuery)
		if err != nil {
			if !errors.Is(err, channel.ErrMalformed) {
				t.Fatalf("SplitResponse error %v is not malformed", err)
			}
			return
		}
		r, err := alipay.ParseQuery(node, orderNo)
		if err != nil {
			if r != (recon.LookupResult{}) {
				t.Errorf("error %v with a non-zero result %+v", err, r)
			}
			if len(err.Error()) > maxErrLen(orderNo) {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			return
		}
		if !r.Status.Valid() || r.Status == recon.ChannelFailed {
			t.Fatalf("accepted status %q", r.Status)
		}
		if r.Amount < 0 {
			t.Errorf("accepted negative amount %d", r.Amount)
		}
		if r.Currency != "" && !recon.ValidCurrency(r.Currency) {
			t.Errorf("accepted currency %q", r.Currency)
		}
		if r.Status == recon.ChannelPaid && (r.Currency == "" || r.TxnID == "") {
			t.Errorf("paid without currency or trade_no: %+v", r)
		}
		if r.PaidAt != nil && r.PaidAt.Location().String() != "UTC" {
			t.Errorf("paid_at %s not in UTC", r.PaidAt)
		}
		if r.Status != recon.ChannelNotFound && !strings.Contains(string(node), "out_trade_no") {
			t.Errorf("answer without out_trade_no accepted for %q", orderNo)
		}
	})
}

// FuzzParseClose does the same for alipay.trade.close answers.
func FuzzParseClose(f *testing.F) {
	f.Add([]byte(`{"alipay_trade_close_response":{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"YX_001"},"sign":"AAAA"}`), "YX_001")
	f.Add([]byte(`{"alipay_trade_close_response":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_STATUS_ERROR","sub_msg":"交易状态不合法"},"sign":"AAAA"}`), "YX_001")
	f.Fuzz(func(t *testing.T, body []byte, orderNo string) {
		checkOpen(t, body, alipay.MethodClose)
		node, _, err := alipay.SplitResponse(body, alipay.MethodClose)
		if err != nil {
			return
		}
		if err := alipay.ParseClose(node, orderNo); err != nil {
			if len(err.Error()) > maxErrLen(orderNo) {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			if channel.ClassOf(err) == channel.ClassRateLimited {
				t.Errorf("rate-limited error from a body: %v", err)
			}
		}
	})
}

// FuzzParseAmount checks that ParseAmount never panics, accepts only
// non-negative amounts, and that what it accepts survives FormatAmount.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"88.88", "0.01", "100000000", "1.001", "-1", "1e2", "500"} {
		f.Add(s, "CNY")
	}
	f.Add("500", "JPY")
	f.Add("1.234", "KWD")
	f.Fuzz(func(t *testing.T, s, currency string) {
		v, err := alipay.ParseAmount(s, currency)
		if err != nil {
			if !errors.Is(err, alipay.ErrAmount) {
				t.Fatalf("ParseAmount(%q) error %v does not wrap ErrAmount", s, err)
			}
			return
		}
		if v < 0 {
			t.Fatalf("ParseAmount(%q) = %d", s, v)
		}
		back, err := alipay.ParseAmount(alipay.FormatAmount(v, currency), currency)
		if err != nil || back != v {
			t.Fatalf("ParseAmount(%q) = %d, formatted %q, read back %d, %v", s, v, alipay.FormatAmount(v, currency), back, err)
		}
	})
}

// FuzzParseBill feeds arbitrary detail files (zipped in GBK, as Alipay serves
// them) and arbitrary zips to ParseBill: it must never panic, every error is
// a bad statement, and a file it accepts has valid lines whose counts are
// the footer's.
func FuzzParseBill(f *testing.F) {
	for _, name := range []string{"detail_25col.csv", "detail_29col.csv"} {
		f.Add([]byte(fixture(f, name)), false)
	}
	f.Add(billZip(f, true, map[string]string{detailName: fixture(f, "detail_25col.csv")}), true)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		if !raw {
			data = billZip(t, false, map[string]string{detailName: string(data)})
		}
		channeltest.CheckStatementParse(t, func(emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
			return alipay.ParseBill(bytes.NewReader(data), int64(len(data)), alipay.BillCheck{Day: billDay}, emit)
		})
	})
}

// FuzzParseRefundQuery feeds arbitrary gateway bodies to SplitResponse and
// ParseRefundQuery (and Open): they must never panic, and whatever they
// accept must be a storable answer about the refund asked for; only
// REFUND_SUCCESS succeeds, and nothing is ever FAILED.
func FuzzParseRefundQuery(f *testing.F) {
	f.Add([]byte(`{"alipay_trade_fastpay_refund_query_response":{"code":"10000","msg":"Success","trade_no":"T","out_trade_no":"ORD-7","out_request_no":"RF-1","total_amount":"100.20","refund_amount":12.33,"refund_status":"REFUND_SUCCESS","gmt_refund_pay":"2014-11-27 15:45:57"},"sign":"AAAA"}`), "RF-1", "ORD-7")
	f.Add([]byte(`{"alipay_trade_fastpay_refund_query_response":{"code":"10000","msg":"Success"},"sign":"AAAA"}`), "RF-1", "ORD-7")
	f.Add([]byte(`{"alipay_trade_fastpay_refund_query_response":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"},"sign":"AAAA"}`), "RF-1", "ORD-7")
	f.Fuzz(func(t *testing.T, body []byte, refundNo, orderNo string) {
		checkOpen(t, body, alipay.MethodRefundQuery)
		node, _, err := alipay.SplitResponse(body, alipay.MethodRefundQuery)
		if err != nil {
			if !errors.Is(err, channel.ErrMalformed) {
				t.Fatalf("SplitResponse error %v is not malformed", err)
			}
			return
		}
		r, err := alipay.ParseRefundQuery(node, refundNo, orderNo)
		if err != nil {
			if r != (recon.RefundLookup{}) {
				t.Errorf("error %v with a non-zero answer %+v", err, r)
			}
			if len(err.Error()) > maxErrLen(refundNo+orderNo) {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			return
		}
		switch r.Status {
		case recon.RefundChannelNotFound:
		case recon.RefundChannelSucceeded:
			if err := r.Validate(); err != nil || r.Currency != alipay.DefaultCurrency {
				t.Errorf("accepted %+v: %v", r, err)
			}
			var q alipay.RefundQuery
			if json.Unmarshal(node, &q) != nil || q.RefundStatus != alipay.RefundSuccess || q.OutRequestNo != refundNo {
				t.Errorf("success without REFUND_SUCCESS about %q: %s", refundNo, node)
			}
		default:
			t.Fatalf("accepted status %q", r.Status)
		}
	})
}
