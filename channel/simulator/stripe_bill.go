package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/recon-dev/recon"
)

// stripeBalanceTxn is a balance transaction, its keys in the API
// reference's order; Source is the expanded charge or refund, or its id.
type stripeBalanceTxn struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	Amount            int64             `json:"amount"`
	AvailableOn       int64             `json:"available_on"`
	Created           int64             `json:"created"`
	Currency          string            `json:"currency"`
	Description       *string           `json:"description"`
	ExchangeRate      *float64          `json:"exchange_rate"`
	Fee               int64             `json:"fee"`
	FeeDetails        []stripeFeeDetail `json:"fee_details"`
	Net               int64             `json:"net"`
	ReportingCategory string            `json:"reporting_category"`
	Source            any               `json:"source"`
	Status            string            `json:"status"`
	Type              string            `json:"type"`
}

type stripeFeeDetail struct {
	Amount      int64   `json:"amount"`
	Application *string `json:"application"`
	Currency    string  `json:"currency"`
	Description string  `json:"description"`
	Type        string  `json:"type"`
}

// stripeRefund is a Refund, its keys in the API reference's order; the
// fields a statement's expanded source leaves out are omitted when empty.
type stripeRefund struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	Amount             int64             `json:"amount"`
	BalanceTransaction *string           `json:"balance_transaction,omitempty"`
	Charge             string            `json:"charge"`
	Created            int64             `json:"created"`
	Currency           string            `json:"currency"`
	DestinationDetails map[string]any    `json:"destination_details,omitempty"`
	FailureReason      string            `json:"failure_reason,omitempty"`
	Metadata           map[string]string `json:"metadata"`
	NextAction         map[string]any    `json:"next_action,omitempty"`
	PaymentIntent      string            `json:"payment_intent"`
	PendingReason      string            `json:"pending_reason,omitempty"`
	Reason             *string           `json:"reason"`
	Status             string            `json:"status"`
}

type stripeList struct {
	Object  string             `json:"object"`
	Data    []stripeBalanceTxn `json:"data"`
	HasMore bool               `json:"has_more"`
	URL     string             `json:"url"`
}

// balanceTransactions answers GET /v1/balance_transactions for a
// created[gte]/created[lt] window: the statement lines of the day starting
// at created[gte] (StatementLines in a zone whose midnight that is), newest
// first, paged by limit (default 10, at most 100) and starting_after, each
// a charge or a refund of the order's PaymentIntent (its channel_txn_id),
// expanded when expand[]=data.source is asked. Without a statement source
// the list is empty.
func (h *stripeServer) balanceTransactions(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeReply(w, stripeErrorReply(http.StatusBadRequest, stripeErrorObject{Type: "invalid_request_error", Message: "Invalid request."}))
		return
	}
	bad := func(param, msg string) {
		writeReply(w, stripeErrorReply(http.StatusBadRequest, stripeErrorObject{Type: "invalid_request_error", Param: param, Message: msg}))
	}
	gte, err1 := strconv.ParseInt(r.Form.Get("created[gte]"), 10, 64)
	lt, err2 := strconv.ParseInt(r.Form.Get("created[lt]"), 10, 64)
	if err1 != nil || err2 != nil || lt <= gte || lt-gte > 2*86400 {
		bad("created", "The simulator needs created[gte] and created[lt], at most two days apart.")
		return
	}
	limit := int64(10)
	if v := r.Form.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 100 {
			bad("limit", "Invalid integer: "+v)
			return
		}
		limit = n
	}
	expand := expands(r, "data.source")
	// The zone (within ±12 h of UTC) whose midnight is created[gte].
	off := int(gte % 86400)
	if off > 43200 {
		off -= 86400
	}
	zone := time.FixedZone("", -off)
	day := time.Unix(gte, 0).In(zone).Format(time.DateOnly)
	lines, err := h.sim.StatementLines(r.Context(), day, zone)
	if err != nil && r.Context().Err() != nil {
		return
	}
	list := stripeList{Object: "list", Data: []stripeBalanceTxn{}, URL: "/v1/balance_transactions"}
	var txns []stripeBalanceTxn
	for _, l := range lines {
		if at := l.OccurredAt.Unix(); at < gte || at >= lt {
			continue
		}
		txns = append(txns, h.balanceTxn(r, l, expand))
	}
	sort.SliceStable(txns, func(i, j int) bool {
		if txns[i].Created != txns[j].Created {
			return txns[i].Created > txns[j].Created
		}
		return txns[i].ID > txns[j].ID
	})
	if after := r.Form.Get("starting_after"); after != "" {
		i := 0
		for i < len(txns) && txns[i].ID != after {
			i++
		}
		if i == len(txns) {
			bad("starting_after", "No such balance transaction: '"+after+"'")
			return
		}
		txns = txns[i+1:]
	}
	if int64(len(txns)) > limit {
		txns, list.HasMore = txns[:limit], true
	}
	if txns != nil {
		list.Data = txns
	}
	body, _ := json.MarshalIndent(list, "", "  ") // plain values always encode
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// balanceTxn renders one statement line as a balance transaction.
func (h *stripeServer) balanceTxn(r *http.Request, l recon.StatementLine, expand bool) stripeBalanceTxn {
	intent := "pi_" + l.ChannelTxnID
	if o, ok, err := h.orders.OrderByNo(r.Context(), l.OrderNo); err == nil && ok && strings.HasPrefix(o.ChannelTxnID, "pi_") {
		intent = o.ChannelTxnID
	}
	cur := strings.ToLower(l.Currency)
	charge := "ch_" + l.ChannelTxnID
	meta := map[string]string{"order_no": l.OrderNo}
	bt := stripeBalanceTxn{Object: "balance_transaction", Created: l.OccurredAt.Unix(), AvailableOn: l.OccurredAt.Unix() + 2*86400,
		Currency: cur, Fee: l.Fee, FeeDetails: []stripeFeeDetail{}, Status: "pending"}
	if l.Fee != 0 {
		bt.FeeDetails = append(bt.FeeDetails, stripeFeeDetail{Amount: l.Fee, Currency: cur, Description: "Stripe processing fees", Type: "stripe_fee"})
	}
	if l.Kind == recon.LineRefund {
		id := "re_" + l.RefundNo
		bt.ID = fmt.Sprintf("txn_SIM%016X", h.sim.hash(id, "balance_transaction"))
		bt.Amount, bt.Type, bt.ReportingCategory = -l.Amount, "refund", "refund"
		reason := "requested_by_customer"
		bt.Source = id
		if expand {
			bt.Source = stripeRefund{ID: id, Object: "refund", Amount: l.Amount, Charge: charge, Created: bt.Created,
				Currency: cur, Metadata: meta, PaymentIntent: intent, Reason: &reason, Status: "succeeded"}
		}
	} else {
		bt.ID = fmt.Sprintf("txn_SIM%016X", h.sim.hash(charge, "balance_transaction"))
		bt.Amount, bt.Type, bt.ReportingCategory = l.Amount, "charge", "charge"
		bt.Source = charge
		if expand {
			bt.Source = stripeCharge{ID: charge, Object: "charge", Amount: l.Amount, AmountCaptured: l.Amount, Captured: true,
				Created: bt.Created, Currency: cur, Metadata: meta, Paid: true, PaymentIntent: intent,
				PaymentMethod: fmt.Sprintf("pm_SIM%016X", h.sim.hash(l.OrderNo, "payment_method")), Status: "succeeded"}
		}
	}
	bt.Net = bt.Amount - bt.Fee
	return bt
}
