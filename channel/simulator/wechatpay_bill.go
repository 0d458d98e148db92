package simulator

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/recon-dev/recon/channel/wechatpay"
)

// WechatBillDownloadPath is where the server hands out the bills whose
// download_url the trade bill API answered.
const WechatBillDownloadPath = "/v3/billdownload/file"

// maxWechatBills bounds the rendered bills kept for download.
const maxWechatBills = 32

// tradeBill answers GET /v3/bill/tradebill?bill_date=…&bill_type=ALL as
// WeChat Pay does: a signed {download_url, hash_type SHA1, hash_value} whose
// hash is the SHA-1 of the decompressed file; 400 NO_STATEMENT_EXIST
// (signed) when the simulator has no statement source. The bill is rendered
// once (wechatpay.WriteBill, the day's statement in China time) and kept for
// its download, so that the hash holds whatever happens to the orders
// meanwhile.
func (w *wechatServer) tradeBill(rw http.ResponseWriter, r *http.Request) {
	if _, ok := w.authenticate(rw, r); !ok {
		return
	}
	q := r.URL.Query()
	day := q.Get("bill_date")
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		w.write(rw, wechatError(http.StatusBadRequest, "INVALID_REQUEST", "参数错误: bill_date"))
		return
	}
	if bt := q.Get("bill_type"); bt != "" && bt != wechatpay.BillTypeAll {
		w.write(rw, wechatError(http.StatusBadRequest, "PARAM_ERROR", "仅支持 bill_type=ALL"))
		return
	}
	tar := q.Get("tar_type")
	if tar != "" && tar != wechatpay.TarTypeGzip {
		w.write(rw, wechatError(http.StatusBadRequest, "PARAM_ERROR", "参数错误: tar_type"))
		return
	}
	lines, err := w.sim.StatementLines(r.Context(), day, chinaTime)
	switch {
	case errors.Is(err, ErrNoStatementSource):
		w.write(rw, wechatError(http.StatusBadRequest, wechatpay.CodeNoStatementExist, "账单文件不存在"))
		return
	case err != nil:
		if r.Context().Err() == nil {
			w.write(rw, wechatError(http.StatusInternalServerError, wechatpay.CodeSystemError, "系统异常，请稍后重试"))
		}
		return
	}
	var file bytes.Buffer
	if err := wechatpay.WriteBill(&file, wechatpay.Bill{AppID: TestWechatAppID, MchID: w.keys.WechatMchID, Lines: lines}); err != nil {
		w.write(rw, wechatError(http.StatusInternalServerError, wechatpay.CodeSystemError, "系统异常，请稍后重试"))
		return
	}
	sum := sha1.Sum(file.Bytes())
	token := wechatNonce() + wechatNonce()
	body := file.Bytes()
	if tar == wechatpay.TarTypeGzip {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(body) // writes to a buffer do not fail
		_ = zw.Close()
		body = gz.Bytes()
	}
	w.mu.Lock()
	w.bills[token] = body
	w.order = append(w.order, token)
	if len(w.order) > maxWechatBills {
		delete(w.bills, w.order[0])
		w.order = w.order[1:]
	}
	w.mu.Unlock()
	answer, _ := json.Marshal(wechatpay.BillURL{HashType: wechatpay.HashTypeSHA1, HashValue: hex.EncodeToString(sum[:]),
		DownloadURL: requestBase(r) + WechatBillDownloadPath + "?" + url.Values{"token": {token}}.Encode()}) // strings always encode
	w.write(rw, wechatReply{status: http.StatusOK, body: answer})
}

// downloadBill serves a bill tradeBill rendered, to a request signed by the
// merchant. The answer is not signed, as WeChat Pay's is not.
func (w *wechatServer) downloadBill(rw http.ResponseWriter, r *http.Request) {
	if _, ok := w.authenticate(rw, r); !ok {
		return
	}
	w.mu.Lock()
	body, ok := w.bills[r.URL.Query().Get("token")]
	w.mu.Unlock()
	if !ok {
		w.write(rw, wechatError(http.StatusBadRequest, "INVALID_REQUEST", "下载地址已失效"))
		return
	}
	rw.Header().Set("Content-Type", "application/octet-stream")
	rw.Header().Set("Request-ID", wechatNonce())
	_, _ = rw.Write(body)
}
