package alipay

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Bill is a day's trade bill to write as Alipay serves it (WriteBill): the
// simulator's statements and the tests' files.
type Bill struct {
	// Account is the merchant's account as the bill names it (a PID followed
	// by 0156).
	Account string
	// Day is the bill's day, YYYY-MM-DD (Beijing time).
	Day string
	// Lines are the payments and refunds, in order. Amounts are written in
	// yuan (the trade bill has no currency column).
	Lines []recon.StatementLine
	// ExportedAt is the time in the last footer line.
	ExportedAt time.Time
	// TradeTotalDelta is added to the #交易合计 amount (in fen): a non-zero
	// value writes a file whose rows do not add up to its footer.
	TradeTotalDelta int64
}

// DetailHeader is the 25-column header row of the detail file.
var DetailHeader = []string{"支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称",
	"操作员", "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）",
	"商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号",
	"服务费（元）", "分润（元）", "备注"}

const billRule = "#-----------------------------------------"

// WriteBill writes b as the zip Alipay's bill download serves: the detail
// (…_业务明细.csv) and the summary (…_业务明细(汇总).csv), both GBK-encoded
// with GBK file names and CRLF line ends.
func WriteBill(w io.Writer, b Bill) error {
	day, err := time.Parse(time.DateOnly, b.Day)
	if err != nil {
		return fmt.Errorf("write bill: day %q is not YYYY-MM-DD", b.Day)
	}
	var detail, summary bytes.Buffer
	cn := func(t time.Time) string { return t.In(Beijing).Format("2006年01月02日 15:04:05") }
	line := func(buf *bytes.Buffer, s string) { buf.WriteString(s + "\r\n") }
	line(&detail, "#支付宝业务明细查询")
	line(&detail, "#账号：["+b.Account+"]")
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, Beijing)
	line(&detail, "#起始日期：["+cn(start)+"]   终止日期：["+cn(start.AddDate(0, 0, 1))+"]")
	line(&detail, billRule+"业务明细列表----------------------------------------")
	line(&detail, strings.Join(DetailHeader, ","))
	yuan := func(n int64) string { return channel.FormatDecimal(n, 2) }
	var tc, rc, tr, rr, tf, rf int64
	for _, l := range b.Lines {
		amount, biz, refundNo := l.Amount, BizTrade, ""
		if l.Kind == recon.LineRefund {
			amount, biz, refundNo = -l.Amount, BizRefund, l.RefundNo
			rc++
			rr += amount
			rf += l.Fee
		} else {
			tc++
			tr += amount
			tf += l.Fee
		}
		at := l.OccurredAt.In(Beijing).Format(TimeLayout)
		row := []string{l.ChannelTxnID + "\t", l.OrderNo + "\t", biz + "\t", "商品", at, at, "\t", "\t", "\t", "\t",
			"159****5620\t", yuan(amount), yuan(amount), "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00\t", "0.00",
			refundNo + "\t", yuan(l.Fee), "0.00", ""}
		for i := range row {
			row[i] = channel.QuoteCSV(row[i])
		}
		line(&detail, strings.Join(row, ","))
	}
	line(&detail, billRule+"业务明细列表结束------------------------------------")
	line(&detail, fmt.Sprintf("#交易合计：%d笔，商家实收共%s元，商家优惠共0.00元", tc, yuan(tr+b.TradeTotalDelta)))
	line(&detail, fmt.Sprintf("#退款合计：%d笔，商家实收退款共%s元，商家优惠退款共0.00元", rc, yuan(rr)))
	line(&detail, "#导出时间：["+cn(b.ExportedAt)+"]")

	line(&summary, "#支付宝业务汇总查询")
	line(&summary, "#账号：["+b.Account+"]")
	line(&summary, "#起始日期：["+cn(start)+"]   终止日期：["+cn(start.AddDate(0, 0, 1))+"]")
	line(&summary, billRule+"业务汇总列表----------------------------------------")
	line(&summary, "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）")
	line(&summary, fmt.Sprintf("合计,,%d,%d,%s,%s,0.00,0.00,0.00,%s,0.00,%s", tc, rc, yuan(tr+rr), yuan(tr+rr), yuan(tf+rf), yuan(tr+rr+tf+rf)))
	line(&summary, billRule+"业务汇总列表结束------------------------------------")
	line(&summary, "#导出时间：["+cn(b.ExportedAt)+"]")

	base := b.Account + "_" + day.Format("20060102")
	zw := zip.NewWriter(w)
	for _, f := range []struct {
		name string
		body []byte
	}{{base + "_业务明细.csv", detail.Bytes()}, {base + "_业务明细(汇总).csv", summary.Bytes()}} {
		if err := writeGBKEntry(zw, f.name, f.body, b.ExportedAt); err != nil {
			return fmt.Errorf("write bill: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write bill: %w", err)
	}
	return nil
}

// writeGBKEntry adds a file to zw with its name and text in GBK.
func writeGBKEntry(zw *zip.Writer, name string, text []byte, modified time.Time) error {
	enc := simplifiedchinese.GBK.NewEncoder()
	gbkName, err := enc.String(name)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	body, err := simplifiedchinese.GBK.NewEncoder().Bytes(text)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: gbkName, Method: zip.Deflate, Modified: modified, NonUTF8: true})
	if err != nil {
		return err
	}
	_, err = fw.Write(body)
	return err
}
