package wechatpay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/wechatpay"
)

const (
	docRefundNo = "sdk12345678920210326145039"
	docOrderNo  = "sdk12345678920210326145039"
)

func TestParseDocumentedRefund(t *testing.T) {
	body := readTestdata(t, "refund_query_success.json")
	got, err := wechatpay.ParseRefund(body, docRefundNo, docOrderNo)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2021, 3, 26, 6, 52, 11, 0, time.UTC)
	if got.Status != recon.RefundChannelSucceeded || got.Amount != 1 || got.Currency != "CNY" ||
		got.ChannelRefundID != "50001307732021032607480019805" || got.SucceededAt == nil || !got.SucceededAt.Equal(at) ||
		got.SucceededAt.Location() != time.UTC {
		t.Errorf("documented refund read as %+v", got)
	}
}

func TestLookupRefundMapsAnswers(t *testing.T) {
	f, c := newFake(t)
	doc := string(readTestdata(t, "refund_query_success.json"))
	status := func(s string) string {
		b := strings.Replace(doc, `"status": "SUCCESS"`, `"status": "`+s+`"`, 1)
		return strings.Replace(b, `"success_time": "2021-03-26T14:52:11+08:00",`, "", 1)
	}
	r := recon.Refund{RefundNo: docRefundNo, OrderNo: docOrderNo, Amount: 1, Currency: "CNY"}
	for _, tc := range []struct {
		name   string
		a      answer
		want   recon.RefundChannelStatus
		detail string
	}{
		{"success", answer{status: 200, body: doc}, recon.RefundChannelSucceeded, ""},
		{"closed is failed", answer{status: 200, body: status("CLOSED")}, recon.RefundChannelFailed, ""},
		{"processing", answer{status: 200, body: status("PROCESSING")}, recon.RefundChannelPending, ""},
		{"abnormal", answer{status: 200, body: status("ABNORMAL")}, recon.RefundChannelAbnormal, "支付用户零钱"},
		{"not found", answer{status: 404, body: `{"code":"RESOURCE_NOT_EXISTS","message":"退款单不存在"}`}, recon.RefundChannelNotFound, ""},
	} {
		f.answer = tc.a
		got, err := c.LookupRefund(context.Background(), r)
		if err != nil || got.Status != tc.want || got.Detail != tc.detail {
			t.Errorf("%s: %+v, %v; want %s", tc.name, got, err, tc.want)
		}
		if want := "/v3/refund/domestic/refunds/" + docRefundNo; f.request.URL.RequestURI() != want || f.request.Method != "GET" {
			t.Errorf("%s: asked %s %s, want GET %s", tc.name, f.request.Method, f.request.URL.RequestURI(), want)
		}
	}
	for _, tc := range []struct {
		name  string
		a     answer
		class channel.Class
		is    error
	}{
		{"another refund", answer{status: 200, body: strings.Replace(doc, `"out_refund_no": "`+docRefundNo, `"out_refund_no": "R2`, 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"another order", answer{status: 200, body: strings.Replace(doc, `"out_trade_no": "`+docOrderNo, `"out_trade_no": "O2`, 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"unknown status", answer{status: 200, body: status("REFUNDED")}, channel.ClassPermanent, channel.ErrMalformed},
		{"success without refund amount", answer{status: 200, body: strings.Replace(doc, `"refund": 1,`, "", 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"fractional fen", answer{status: 200, body: strings.Replace(doc, `"refund": 1,`, `"refund": 1.5,`, 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"negative refund", answer{status: 200, body: strings.Replace(doc, `"refund": 1,`, `"refund": -1,`, 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"unsigned", answer{status: 200, body: doc, unsigned: true}, channel.ClassPermanent, channel.ErrBadSignature},
		{"unsigned not found", answer{status: 404, unsigned: true, body: `{"code":"RESOURCE_NOT_EXISTS","message":"退款单不存在"}`}, channel.ClassPermanent, channel.ErrBadSignature},
		{"stale", answer{status: 200, body: doc, at: now.Add(-time.Hour)}, channel.ClassPermanent, channel.ErrBadSignature},
		{"404 of another kind", answer{status: 404, body: `{"code":"ORDER_NOT_EXIST","message":"订单不存在"}`}, channel.ClassPermanent, nil},
		{"rate limited", answer{status: 429, body: `{"code":"FREQUENCY_LIMITED","message":"频率超限"}`}, channel.ClassRateLimited, nil},
		{"system error", answer{status: 500, body: `{"code":"SYSTEM_ERROR","message":"系统异常"}`}, channel.ClassTransient, nil},
	} {
		f.answer = tc.a
		got, err := c.LookupRefund(context.Background(), r)
		if err == nil || channel.ClassOf(err) != tc.class || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), "refund lookup "+docRefundNo) {
			t.Errorf("%s: %+v, %v; want a %s error %v naming the refund", tc.name, got, err, tc.class, tc.is)
		}
	}
}
