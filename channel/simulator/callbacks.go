package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/httpjson"
)

// CallbackPlan is how the simulator posts its notifications, the way
// channels do: some late, some twice, some never (a failed payment is never
// notified, nor is an order still pending), some out of order, and forged
// ones with a bad signature among them. Each share is chosen per order from
// hash(seed, order_no).
type CallbackPlan struct {
	// LostRate of final orders are never notified: recon's lookups must
	// settle them.
	LostRate float64
	// LateRate of the notified orders are posted after LateDelay.
	LateRate  float64
	LateDelay time.Duration
	// DuplicateRate of the notified orders are posted twice.
	DuplicateRate float64
	// ForgedRate of the orders also get a forged PAID notification with a
	// signature that does not verify.
	ForgedRate float64
}

// DefaultCallbackPlan is the plan of recon sim serve and the demo.
var DefaultCallbackPlan = CallbackPlan{LostRate: 0.15, LateRate: 0.2, LateDelay: 3 * time.Second, DuplicateRate: 0.2, ForgedRate: 0.05}

// Callback is one notification to post.
type Callback struct {
	OrderNo string
	Body    []byte
	Header  http.Header
	// After is how long after the start of the posting it is sent.
	After time.Duration
	// Duplicate is a repeated delivery; Forged does not verify.
	Duplicate, Forged bool
}

// Callbacks returns the notifications the channel posts about orders, in
// the order they are sent (out of order: shuffled by hash, late ones last), as
// httpjson data objects signed with the simulator's secret (CONTRACT §11).
// Only final answers are notified, and FAILED never is.
func (s *Sim) Callbacks(orders []recon.Order, p CallbackPlan) []Callback {
	var out []Callback
	for _, o := range orders {
		if s.unit(o.OrderNo, "cb-forged") < p.ForgedRate {
			amount := o.Amount
			body, _ := json.Marshal(httpjson.Data{Order: o.OrderNo, Status: string(recon.ChannelPaid), Amount: &amount,
				Currency: o.Currency, TxnID: "FORGED-" + o.OrderNo})
			out = append(out, Callback{OrderNo: o.OrderNo, Body: body, Forged: true,
				Header: http.Header{httpjson.SignatureHeader: {httpjson.Sign("forged-"+s.cfg.Secret, body)}}})
		}
		st, amount, currency := s.eventual(o)
		if (st != recon.ChannelPaid && st != recon.ChannelClosed) || s.unit(o.OrderNo, "cb-lost") < p.LostRate {
			continue
		}
		d := httpjson.Data{Order: o.OrderNo, Status: string(st), Amount: &amount, Currency: currency}
		if st == recon.ChannelPaid {
			d.TxnID, d.PaidAt = s.TxnID(o.OrderNo), s.paidAt(o).Format(time.RFC3339)
		}
		body, _ := json.Marshal(d)
		cb := Callback{OrderNo: o.OrderNo, Body: body, Header: http.Header{httpjson.SignatureHeader: {httpjson.Sign(s.cfg.Secret, body)}}}
		if s.unit(o.OrderNo, "cb-late") < p.LateRate {
			cb.After = p.LateDelay
		}
		out = append(out, cb)
		if s.unit(o.OrderNo, "cb-dup") < p.DuplicateRate {
			dup := cb
			dup.Duplicate = true
			out = append(out, dup)
		}
	}
	// Out of order: sent by their delay, and within one delay in an order
	// of their own, not the orders'.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].After != out[j].After {
			return out[i].After < out[j].After
		}
		return s.hash(out[i].OrderNo, "cb-order", strconv.FormatBool(out[i].Duplicate)) <
			s.hash(out[j].OrderNo, "cb-order", strconv.FormatBool(out[j].Duplicate))
	})
	return out
}

// eventual is the final answer the channel settles o on, as its lookups
// would give it in the end.
func (s *Sim) eventual(o recon.Order) (recon.ChannelStatus, int64, string) {
	s.mu.Lock()
	b, _ := s.behaviour(o)
	s.mu.Unlock()
	st := currentStatus(b, b.PaidAfterLookups+1)
	amount, currency := o.Amount, o.Currency
	if st == recon.ChannelPaid {
		if b.Amount != 0 {
			amount = b.Amount
		}
		if b.Currency != "" {
			currency = b.Currency
		}
	}
	return st, amount, currency
}

// PostStats counts the answers to posted notifications.
type PostStats struct {
	Sent, Handled, Refused, Failed int
}

// PostCallbacks posts cbs to url in order, each no earlier than its After
// from the start, and counts the answers: 2xx handled, others refused, no
// answer failed. It stops when ctx ends.
func PostCallbacks(ctx context.Context, client *http.Client, url string, cbs []Callback) (PostStats, error) {
	var st PostStats
	start := time.Now()
	for _, cb := range cbs {
		if wait := time.Until(start.Add(cb.After)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return st, ctx.Err()
			case <-t.C:
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(cb.Body))
		if err != nil {
			return st, fmt.Errorf("post callback: %w", err)
		}
		req.Header = cb.Header.Clone()
		req.Header.Set("Content-Type", "application/json")
		st.Sent++
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			st.Failed++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			st.Handled++
		} else {
			st.Refused++
		}
	}
	return st, nil
}
