package simulator

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/recon-dev/recon/channel/alipay"
)

// AlipayBillPath is where the server hands out trade bills, as Alipay's
// bill_download_url does (the URL carries a token).
const AlipayBillPath = "/alipay/downloadBillFile.resource"

// AlipayAccount is the merchant account the simulated bills name.
const AlipayAccount = "20880000000000000156"

// requestBase is the scheme and host r came to.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// billToken is the download token of a day's bill: an HMAC of the day under
// the gateway's key, so that only a URL the gateway handed out downloads.
func billToken(keys Keys, kind, day string) string {
	m := hmac.New(sha256.New, []byte(keys.AlipayKey.D.String()))
	m.Write([]byte(kind + "|" + day))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// billURL answers alipay.data.dataservice.bill.downloadurl.query: the
// signed download URL of the day's trade bill, isp.bill_not_exist when the
// simulator has no statement source, isv errors for a bad request.
func (g alipayGateway) billURL(ctx context.Context, node, bizContent string) {
	var biz struct {
		BillType string `json:"bill_type"`
		BillDate string `json:"bill_date"`
	}
	if err := json.Unmarshal([]byte(bizContent), &biz); err != nil || biz.BillType != alipay.BillTypeTrade {
		g.signed(node, alipayResult(alipay.CodeInvalidArguments, "isv.invalid-parameter", "参数无效"), false)
		return
	}
	if _, err := time.Parse(time.DateOnly, biz.BillDate); err != nil {
		g.signed(node, alipayResult(alipay.CodeInvalidArguments, "isv.invalid-bill-date", "账单日期格式不正确"), false)
		return
	}
	if _, err := g.s.StatementLines(ctx, biz.BillDate, alipay.Beijing); err != nil {
		if errors.Is(err, ErrNoStatementSource) {
			g.signed(node, alipayResult(alipay.CodeBusinessFailed, alipay.SubBillNotExist, "账单不存在"), false)
		} else if ctx.Err() == nil {
			g.signed(node, alipayResult(alipay.CodeUnavailable, "isp.unknow-error", "系统繁忙"), false)
		}
		return
	}
	q := url.Values{"bizType": {"trade"}, "userId": {AlipayAccount[:16]}, "fileType": {"csv.zip"},
		"bizDates": {strings.ReplaceAll(biz.BillDate, "-", "")}, "token": {billToken(g.keys, "alipay", biz.BillDate)}}
	g.signed(node, alipay.BillDownloadURL{Result: alipayResult(alipay.CodeSuccess, "", ""),
		BillDownloadURL: g.base + AlipayBillPath + "?" + q.Encode()}, false)
}

// alipayBill serves a trade bill zip (alipay.WriteBill) of the day's
// statement in Beijing time, for a URL billURL handed out. Fees are written
// negative (服务费 is a cost in Alipay's bills).
func (s *Sim) alipayBill(keys Keys) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		d, err := time.Parse("20060102", q.Get("bizDates"))
		if err != nil {
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		day := d.Format(time.DateOnly)
		if !hmac.Equal([]byte(q.Get("token")), []byte(billToken(keys, "alipay", day))) {
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		lines, err := s.StatementLines(r.Context(), day, alipay.Beijing)
		if err != nil {
			if r.Context().Err() == nil {
				http.Error(w, "bill unavailable", http.StatusInternalServerError)
			}
			return
		}
		for i := range lines {
			lines[i].Fee = -lines[i].Fee // Alipay writes its service fee as a negative amount
		}
		w.Header().Set("Content-Type", "application/oct-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+AlipayAccount+`_`+q.Get("bizDates")+`.csv.zip"`)
		_ = alipay.WriteBill(w, alipay.Bill{Account: AlipayAccount, Day: day, Lines: lines, ExportedAt: s.cfg.Clock.Now()})
	}
}
