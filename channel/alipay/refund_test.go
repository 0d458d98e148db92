package alipay_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/smartwalle/alipay/v3"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/simulator"
)

// refundNode is a refund query answer node as the gateway sends it.
func refundNode(fields string) []byte {
	return []byte(`{"code":"10000","msg":"Success"` + fields + `}`)
}

func TestParseRefundQuery(t *testing.T) {
	t.Parallel()
	const ok = `,"trade_no":"2014112611001004680073956707","out_trade_no":"ORD-1","out_request_no":"RF-1","total_amount":"100.20","refund_amount":"12.33","refund_status":"REFUND_SUCCESS","gmt_refund_pay":"2014-11-27 15:45:57"`
	at := time.Date(2014, 11, 27, 7, 45, 57, 0, time.UTC)
	got, err := alipay.ParseRefundQuery(refundNode(ok), "RF-1", "ORD-1")
	if err != nil || got.Status != recon.RefundChannelSucceeded || got.Amount != 1233 || got.Currency != "CNY" ||
		got.SucceededAt == nil || !got.SucceededAt.Equal(at) {
		t.Fatalf("documented success read as %+v, %v", got, err)
	}
	// Amounts are read exactly, as numbers too (the documented examples
	// write them unquoted).
	for text, want := range map[string]int64{`"0.01"`: 1, `12.3`: 1230, `"100"`: 10000, `"99999999.99"`: 9999999999} {
		node := refundNode(`,"out_request_no":"RF-1","refund_amount":` + text + `,"refund_status":"REFUND_SUCCESS"`)
		if got, err := alipay.ParseRefundQuery(node, "RF-1", "ORD-1"); err != nil || got.Amount != want {
			t.Errorf("refund_amount %s: %+v, %v; want %d fen", text, got, err, want)
		}
	}
	for _, tc := range []struct {
		name string
		node []byte
		want recon.RefundChannelStatus
	}{
		// Success without refund_status: not received (or failed; Alipay
		// does not say which), never FAILED.
		{"no refund_status", refundNode(""), recon.RefundChannelNotFound},
		{"no refund_status, ids echoed", refundNode(`,"out_trade_no":"ORD-1","out_request_no":"RF-1","trade_no":"T"`), recon.RefundChannelNotFound},
		{"trade not exist", []byte(`{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}`), recon.RefundChannelNotFound},
	} {
		if got, err := alipay.ParseRefundQuery(tc.node, "RF-1", "ORD-1"); err != nil || got.Status != tc.want {
			t.Errorf("%s: %+v, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name  string
		node  []byte
		class channel.Class
		is    error
	}{
		{"another refund", refundNode(strings.Replace(ok, `"RF-1"`, `"RF-2"`, 1)), channel.ClassPermanent, channel.ErrMalformed},
		{"another trade", refundNode(strings.Replace(ok, `"ORD-1"`, `"ORD-2"`, 1)), channel.ClassPermanent, channel.ErrMalformed},
		{"success naming no refund", refundNode(`,"refund_amount":"1.00","refund_status":"REFUND_SUCCESS"`), channel.ClassPermanent, channel.ErrMalformed},
		{"success without amount", refundNode(`,"out_request_no":"RF-1","refund_status":"REFUND_SUCCESS"`), channel.ClassPermanent, channel.ErrMalformed},
		{"three decimals", refundNode(strings.Replace(ok, `"12.33"`, `"12.333"`, 1)), channel.ClassPermanent, channel.ErrMalformed},
		{"negative", refundNode(strings.Replace(ok, `"12.33"`, `"-12.33"`, 1)), channel.ClassPermanent, channel.ErrMalformed},
		{"float notation", refundNode(strings.Replace(ok, `"12.33"`, `1.233e1`, 1)), channel.ClassPermanent, channel.ErrMalformed},
		{"unknown refund_status", refundNode(strings.Replace(ok, "REFUND_SUCCESS", "REFUND_PROCESSING", 1)), channel.ClassPermanent, channel.ErrMalformed},
		{"bad gmt_refund_pay", refundNode(strings.Replace(ok, "2014-11-27 15:45:57", "2014-11-27T15:45:57Z", 1)), channel.ClassPermanent, channel.ErrMalformed},
		{"system error", []byte(`{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SYSTEM_ERROR","sub_msg":"系统错误"}`), channel.ClassTransient, nil},
		{"invalid parameter", []byte(`{"code":"40004","msg":"Business Failed","sub_code":"ACQ.INVALID_PARAMETER","sub_msg":"参数无效"}`), channel.ClassPermanent, nil},
		{"no code", []byte(`{"msg":"?"}`), channel.ClassPermanent, channel.ErrMalformed},
	} {
		got, err := alipay.ParseRefundQuery(tc.node, "RF-1", "ORD-1")
		if err == nil || channel.ClassOf(err) != tc.class || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: %+v, %v; want a %s error %v", tc.name, got, err, tc.class, tc.is)
		}
	}
}

// TestRefundQueryAgainstSDK: the SDK's own refund query client and the
// adapter ask the simulator's gateway; the gateway accepts both requests
// (signed by the SDK and by us), the SDK verifies and decodes its answers,
// and both read the same refund.
func TestRefundQueryAgainstSDK(t *testing.T) {
	t.Parallel()
	k := keys(t)
	sim := simulator.New(simulator.Config{Seed: 1})
	orders := simulator.NewOrders()
	srv := httptest.NewServer(sim.Server(orders, k))
	t.Cleanup(srv.Close)
	gateway := srv.URL + simulator.AlipayGatewayPath
	sdkc := sdkClient(t, gateway, &k.AlipayKey.PublicKey)
	ours, err := alipay.New(alipay.Config{Name: "ali", BaseURL: gateway, AppID: appID, PrivateKey: k.AlipayAppKey, AlipayPublicKey: &k.AlipayKey.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-time.Hour).Truncate(time.Second)
	orders.Add(recon.Order{OrderNo: "ORD-S", Amount: 10020, Currency: "CNY", Status: recon.StatusPaid, CreatedAt: created})
	add := func(no string, b simulator.RefundBehaviour) recon.Refund {
		r := recon.Refund{RefundNo: no, OrderNo: "ORD-S", Amount: 1233, Currency: "CNY", Status: recon.RefundPending, CreatedAt: created}
		orders.AddRefund(r)
		sim.SetRefund(no, b)
		return r
	}
	ctx := context.Background()
	sdkQuery := func(r recon.Refund) (*sdk.TradeFastPayRefundQueryRsp, error) {
		return sdkc.TradeFastPayRefundQuery(ctx, sdk.TradeFastPayRefundQuery{OutTradeNo: r.OrderNo, OutRequestNo: r.RefundNo,
			QueryOptions: []string{alipay.OptionGmtRefundPay}})
	}

	done := add("RF-S", simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded})
	rsp, err := sdkQuery(done)
	if err != nil {
		t.Fatalf("SDK refund query: %v", err)
	}
	if rsp.Code != sdk.CodeSuccess || rsp.RefundStatus != alipay.RefundSuccess || rsp.RefundAmount != "12.33" ||
		rsp.TotalAmount != "100.20" || rsp.OutRequestNo != "RF-S" || rsp.GMTRefundPay == "" {
		t.Errorf("the SDK reads %+v", rsp)
	}
	got, err := ours.LookupRefund(ctx, done)
	if err != nil || got.Status != recon.RefundChannelSucceeded || got.Amount != 1233 || got.SucceededAt == nil ||
		got.SucceededAt.In(alipay.Beijing).Format(alipay.TimeLayout) != rsp.GMTRefundPay {
		t.Errorf("the adapter reads %+v, %v (the SDK: %s)", got, err, rsp.GMTRefundPay)
	}

	// Still processing: code 10000 without refund_status for both.
	pending := add("RF-P", simulator.RefundBehaviour{Status: recon.RefundChannelPending})
	if rsp, err := sdkQuery(pending); err != nil || rsp.Code != sdk.CodeSuccess || rsp.RefundStatus != "" {
		t.Errorf("processing refund, the SDK reads %+v, %v", rsp, err)
	}
	if got, err := ours.LookupRefund(ctx, pending); err != nil || got.Status != recon.RefundChannelNotFound {
		t.Errorf("processing refund, the adapter reads %+v, %v; want NOT_FOUND", got, err)
	}

	// An unknown trade: a business error inside a signed node, which the
	// SDK hands back with err == nil; the adapter reads it as NOT_FOUND.
	unknown := recon.Refund{RefundNo: "RF-U", OrderNo: "ORD-U", Amount: 1, Currency: "CNY"}
	if rsp, err := sdkQuery(unknown); err != nil || rsp.SubCode != alipay.SubTradeNotExist {
		t.Errorf("unknown trade, the SDK reads %+v, %v", rsp, err)
	}
	if got, err := ours.LookupRefund(ctx, unknown); err != nil || got.Status != recon.RefundChannelNotFound {
		t.Errorf("unknown trade, the adapter reads %+v, %v; want NOT_FOUND", got, err)
	}

	// The refund asked about under another trade: that trade has no such
	// refund.
	elsewhere := done
	elsewhere.OrderNo = "ORD-OTHER"
	if got, err := ours.LookupRefund(ctx, elsewhere); err != nil || got.Status != recon.RefundChannelNotFound {
		t.Errorf("refund under another trade: %+v, %v; want NOT_FOUND", got, err)
	}

	forged := add("RF-F", simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, BadSignature: true})
	if _, err := sdkQuery(forged); err == nil {
		t.Error("the SDK accepted a forged refund answer")
	}
	if _, err := ours.LookupRefund(ctx, forged); !errors.Is(err, channel.ErrBadSignature) {
		t.Errorf("forged answer: %v, want a bad signature", err)
	}
}
