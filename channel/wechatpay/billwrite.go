package wechatpay

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Bill is a day's trade bill to write as WeChat Pay serves it (WriteBill):
// the simulator's statements and the tests' files.
type Bill struct {
	AppID string
	MchID string
	// Lines are the payments and refunds, in order; a line's Fee (fen) is
	// written with five decimals.
	Lines []recon.StatementLine
	// SettlementDelta is added to 应结订单总金额 (in fen): a non-zero value
	// writes a file whose rows do not add up to its summary.
	SettlementDelta int64
}

// BillHeader is the header row of the current layout (bill_type ALL).
var BillHeader = []string{"交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识",
	"交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额",
	"充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注"}

// BillSummaryHeader is the summary header of the current layout.
var BillSummaryHeader = []string{"总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"}

// WriteBill writes b as WeChat Pay's decompressed trade bill: UTF-8 with a
// BOM, CRLF line ends, every field prefixed by a backtick.
func WriteBill(w io.Writer, b Bill) error {
	bw := bufio.NewWriter(w)
	line := func(fields []string, tick bool) {
		for i, f := range fields {
			if i > 0 {
				bw.WriteByte(',')
			}
			if tick {
				bw.WriteByte('`')
			}
			bw.WriteString(f)
		}
		bw.WriteString("\r\n")
	}
	bw.WriteString("\uFEFF")
	line(BillHeader, false)
	yuan := func(n int64) string { return channel.FormatDecimal(n, 2) }
	var settle, refund, fee, total, asked int64
	for _, l := range b.Lines {
		at := l.OccurredAt.In(chinaTime).Format("2006-01-02 15:04:05")
		cur := l.Currency
		if cur == "" {
			cur = "CNY"
		}
		f := []string{at, b.AppID, b.MchID, "0", "", l.ChannelTxnID, l.OrderNo, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE"}
		if l.Kind == recon.LineRefund {
			f = append(f, BillRefund, "OTHERS", cur, "0.00", "0.00", "5030"+strings.TrimPrefix(l.ChannelTxnID, "4200"), l.RefundNo,
				yuan(l.Amount), "0.00", "ORIGINAL", "SUCCESS", "商品", "", channel.FormatDecimal(l.Fee*1000, FeeScale), "0.60%", "0.00", yuan(l.Amount), "")
			refund += l.Amount
			asked += l.Amount
		} else {
			f = append(f, BillSuccess, "OTHERS", cur, yuan(l.Amount), "0.00", "0", "0", "0.00", "0.00", "", "", "商品", "",
				channel.FormatDecimal(l.Fee*1000, FeeScale), "0.60%", yuan(l.Amount), "0.00", "")
			settle += l.Amount
			total += l.Amount
		}
		fee += l.Fee
		line(f, true)
	}
	line(BillSummaryHeader, false)
	line([]string{fmt.Sprint(len(b.Lines)), yuan(settle + b.SettlementDelta), yuan(refund), "0.00",
		channel.FormatDecimal(fee*1000, FeeScale), yuan(total), yuan(asked)}, true)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write bill: %w", err)
	}
	return nil
}
