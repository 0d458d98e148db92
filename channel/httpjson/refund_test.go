package httpjson

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

var testRefund = recon.Refund{RefundNo: "RF-1", OrderNo: "ORD-7", Amount: 100, Currency: "CNY", Status: recon.RefundPending}

func TestLookupRefund(t *testing.T) {
	t.Parallel()
	ok := `{"code":"0000","data":{"refund":"RF-1","order":"ORD-7","status":"SUCCEEDED","amount":100,"currency":"cny","refund_txn_id":"RT9","succeeded_at":"2026-01-02T11:04:05+08:00"}}`
	t.Run("succeeded at the configured path", func(t *testing.T) {
		t.Parallel()
		srv, last := server(t, answer{status: 200, body: ok, sign: true})
		c := client(t, Config{Name: "hj", BaseURL: srv.URL + "/api", Secret: testSecret, RefundLookupPath: "/v2/refunds/query"})
		got, err := c.LookupRefund(context.Background(), testRefund)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		want := recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: 100, Currency: "CNY", ChannelRefundID: "RT9", SucceededAt: &at}
		if got.Status != want.Status || got.Amount != want.Amount || got.Currency != want.Currency ||
			got.ChannelRefundID != want.ChannelRefundID || got.SucceededAt == nil || !got.SucceededAt.Equal(at) {
			t.Errorf("got %+v, want %+v", got, want)
		}
		if last.URL.Path != "/api/v2/refunds/query" || last.URL.Query().Get("refundId") != "RF-1" {
			t.Errorf("asked %s", last.URL)
		}
	})
	for _, tc := range []struct {
		name  string
		a     answer
		class channel.Class
		is    error
		text  string
	}{
		{"another refund", answer{status: 200, sign: true, body: strings.Replace(ok, `"RF-1"`, `"RF-2"`, 1)}, channel.ClassPermanent, channel.ErrMalformed, `refund "RF-2"`},
		{"another order", answer{status: 200, sign: true, body: strings.Replace(ok, `"ORD-7"`, `"ORD-8"`, 1)}, channel.ClassPermanent, channel.ErrMalformed, `order "ORD-8"`},
		{"unsigned", answer{status: 200, body: ok}, channel.ClassPermanent, channel.ErrBadSignature, "RF-1"},
		{"unsigned 404", answer{status: 404, body: `{"code":"1004"}`}, channel.ClassPermanent, channel.ErrBadSignature, "RF-1"},
		{"succeeded without amount", answer{status: 200, sign: true, body: `{"code":"0000","data":{"refund":"RF-1","status":"SUCCEEDED"}}`}, channel.ClassPermanent, channel.ErrMalformed, "without amount"},
		{"unknown status", answer{status: 200, sign: true, body: `{"code":"0000","data":{"refund":"RF-1","status":"REFUNDED"}}`}, channel.ClassPermanent, channel.ErrMalformed, "REFUNDED"},
		{"other code", answer{status: 200, sign: true, body: `{"code":"9999","msg":"no"}`}, channel.ClassPermanent, nil, "9999"},
		{"5xx", answer{status: 502, body: `bad gateway`}, channel.ClassTransient, nil, "refund lookup RF-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := server(t, tc.a)
			_, err := client(t, Config{Name: "hj", BaseURL: srv.URL, Secret: testSecret}).LookupRefund(context.Background(), testRefund)
			if err == nil || channel.ClassOf(err) != tc.class || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err = %v, want %s %v naming %q", err, tc.class, tc.is, tc.text)
			}
		})
	}
	for _, a := range []answer{
		{status: http.StatusNotFound, sign: true, body: `{"code":"1004","msg":"refund not exist"}`},
		{status: 200, sign: true, body: `{"code":"1004","msg":"refund not exist"}`},
	} {
		srv, _ := server(t, a)
		got, err := client(t, Config{BaseURL: srv.URL, Secret: testSecret}).LookupRefund(context.Background(), testRefund)
		if err != nil || got.Status != recon.RefundChannelNotFound {
			t.Errorf("HTTP %d %s: %+v, %v; want NOT_FOUND", a.status, a.body, got, err)
		}
	}
}

func TestRefundLookupPathValidated(t *testing.T) {
	t.Parallel()
	err := Config{Name: "hj", BaseURL: "https://x", RefundLookupPath: "refunds"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "refund_lookup_path") {
		t.Errorf("Validate = %v, want an error naming refund_lookup_path", err)
	}
}
