package simulator

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
)

// Refunds (CONTRACT §10). The simulated channel answers refund lookups with
// the same machinery and fault injection as order lookups: a refund's
// behaviour is forced with SetRefund or chosen from hash(seed, refund_no)
// with the order rates of Config (PaidRate succeeds, FailedRate and
// ClosedRate fail, NotFoundRate is unknown, LateRate succeeds after
// LateAfter lookups, AmountTamperRate and CurrencyTamperRate succeed with
// another amount or currency, BadSignatureRate is signed with a wrong key)
// and RefundAbnormalRate; refunds in no bucket stay PENDING. Every wire
// format renders the same answers (see the provider files of this package).
//
// The in-process Sim gets the whole refund with each LookupRefund. Over
// HTTP a request carries only the refund number (and Alipay's the order
// number), so Server finds refunds in its OrderSource when that is also a
// RefundSource; Orders is one (Orders.AddRefund).

// RefundBehaviour forces what the channel does with one refund (see
// Sim.SetRefund). The fault fields work as Behaviour's do.
type RefundBehaviour struct {
	// Status is the answer (empty: PENDING). An invalid value is sent as
	// is, and the decoder rejects it as malformed.
	Status recon.RefundChannelStatus
	// Amount of a SUCCEEDED answer (0: the refund's amount).
	Amount int64
	// Currency of a SUCCEEDED answer ("": the refund's).
	Currency string
	// SucceedAfterLookups, when positive, answers Status for the first N
	// lookups and SUCCEEDED afterwards (a refund that settles late).
	SucceedAfterLookups int
	// TransientFailures makes the refund's first N calls fail with HTTP 500
	// (or the provider's system error).
	TransientFailures int
	// RateLimits makes the next N calls answer HTTP 429 with RetryAfter.
	RateLimits int
	// PermanentError makes every later call fail with HTTP 400 (or the
	// provider's permission error).
	PermanentError bool
	// BadSignature sends answers with a signature that does not verify.
	BadSignature bool
	// Malformed answers a correctly signed body that cannot be parsed.
	Malformed bool
	// StaleTimestamp signs answers with a timestamp far in the past (WeChat
	// Pay).
	StaleTimestamp bool
	// WrongRefundNo answers, correctly signed, about another refund (a
	// misrouted or replayed answer), which the client must refuse.
	WrongRefundNo bool
	// Delay is added to every call, after Config.Latency.
	Delay time.Duration
}

// RefundAnswer is what the simulated channel decided for one refund lookup,
// before a wire renderer turns it into a provider's bytes.
type RefundAnswer struct {
	Kind     AnswerKind
	Status   recon.RefundChannelStatus // AnswerStatus
	Amount   int64                     // minor units
	Currency string                    // ISO 4217, upper case
	// RefundID is the channel's id of the refund (the refund's own
	// ChannelRefundID when it has one); empty for NOT_FOUND.
	RefundID string
	// SucceededAt is set when SUCCEEDED.
	SucceededAt time.Time
	RetryAfter  time.Duration // AnswerRateLimited

	BadSignature, Malformed, StaleTimestamp bool
	// WrongRefundNo: name another refund in the answer (AnsweredNo).
	WrongRefundNo bool
}

// AnsweredNo is the refund number (or, for Stripe, the refund id) an answer
// about refund no names: no itself, or another one when WrongRefundNo.
func (a RefundAnswer) AnsweredNo(no string) string {
	if a.WrongRefundNo {
		return no + "-OTHER"
	}
	return no
}

// RefundSource supplies the refunds the server answers about.
type RefundSource interface {
	// RefundByNo returns the refund numbered refundNo, or false when there
	// is none.
	RefundByNo(ctx context.Context, refundNo string) (recon.Refund, bool, error)
}

// ChannelRefundSource is implemented by refund sources that can also find a
// refund by the channel's refund id (Stripe looks refunds up by re_… id).
type ChannelRefundSource interface {
	RefundSource
	// RefundByChannelID returns the refund whose channel_refund_id is id, or
	// false when there is none.
	RefundByChannelID(ctx context.Context, id string) (recon.Refund, bool, error)
}

var _ channel.RefundLookup = (*Sim)(nil)

// SetRefund forces behaviour b for refundNo instead of the seeded choice,
// and turns off the random per-call faults for it. Call counts start at the
// refund's first call, whenever SetRefund is called.
func (s *Sim) SetRefund(refundNo string, b RefundBehaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refundOverrides[refundNo] = b
}

// RefundCalls returns how many refund lookups (in process or over HTTP)
// refundNo got.
func (s *Sim) RefundCalls(refundNo string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.refunds[refundNo]; st != nil {
		return st.calls
	}
	return 0
}

// RefundID is the channel's refund id of a refund without one of its own,
// the same for the same seed and refund number.
func (s *Sim) RefundID(refundNo string) string {
	return fmt.Sprintf("SIMR%016X", s.hash(refundKey(refundNo), "refund_id"))
}

// LookupRefund answers about r like a remote httpjson channel: the answer
// is rendered, signed, verified and parsed (httpjson.DecodeRefund). Faults
// are classified as Lookup's are.
func (s *Sim) LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	a, err := s.NextRefund(ctx, r)
	if err != nil {
		return recon.RefundLookup{}, fmt.Errorf("simulator: refund lookup %s: %w", r.RefundNo, err)
	}
	if a.Kind == AnswerRateLimited {
		return recon.RefundLookup{}, channel.RateLimited(a.RetryAfter,
			fmt.Errorf("simulator: refund lookup %s: HTTP 429 too many requests", r.RefundNo))
	}
	return httpjson.DecodeRefund(s.decode, s.renderRefund(r, a), r.RefundNo, r.OrderNo)
}

// NextRefund waits the configured latency (and the refund's Delay), counts
// one call about r and decides its answer, like Next for orders.
func (s *Sim) NextRefund(ctx context.Context, r recon.Refund) (RefundAnswer, error) {
	s.mu.Lock()
	b, _ := s.refundBehaviour(r)
	s.mu.Unlock()
	if err := s.sleep(ctx, b.Delay); err != nil {
		return RefundAnswer{}, err
	}
	return s.stepRefund(r), nil
}

// RefundAnswerFor finds the refund numbered refundNo in refunds (nil: none)
// and decides the answer to one call about it; a refund refunds does not
// know is NOT_FOUND. It fails when refunds fails or ctx ends.
func (s *Sim) RefundAnswerFor(ctx context.Context, refunds RefundSource, refundNo string) (recon.Refund, RefundAnswer, error) {
	var r recon.Refund
	ok := false
	if refunds != nil {
		var err error
		if r, ok, err = refunds.RefundByNo(ctx, refundNo); err != nil {
			return recon.Refund{}, RefundAnswer{}, fmt.Errorf("simulator: find refund %s: %w", refundNo, err)
		}
	}
	if !ok {
		if err := s.sleep(ctx, 0); err != nil {
			return recon.Refund{}, RefundAnswer{}, err
		}
		return recon.Refund{RefundNo: refundNo}, s.RefundNotFound(refundNo), nil
	}
	r.RefundNo = refundNo
	a, err := s.NextRefund(ctx, r)
	return r, a, err
}

// RefundNotFound counts one call about a refund number the refund source
// does not know, and returns the NOT_FOUND answer for it.
func (s *Sim) RefundNotFound(refundNo string) RefundAnswer {
	s.mu.Lock()
	s.refundState(refundNo).calls++
	s.mu.Unlock()
	return RefundAnswer{Kind: AnswerStatus, Status: recon.RefundChannelNotFound}
}

// stepRefund counts one lookup of r and decides its answer.
func (s *Sim) stepRefund(r recon.Refund) RefundAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, forced := s.refundBehaviour(r)
	st := s.refundState(r.RefundNo)
	if k, ok := s.fault(st, callFaults{b.TransientFailures, b.RateLimits, b.PermanentError}, forced, refundKey(r.RefundNo)); ok {
		a := RefundAnswer{Kind: k, Malformed: b.Malformed, StaleTimestamp: b.StaleTimestamp}
		if k == AnswerRateLimited {
			a.RetryAfter = s.cfg.RetryAfter
		}
		return a
	}
	st.answers++
	a := RefundAnswer{Kind: AnswerStatus, Status: b.Status, Amount: r.Amount, Currency: r.Currency,
		BadSignature: b.BadSignature, Malformed: b.Malformed, StaleTimestamp: b.StaleTimestamp, WrongRefundNo: b.WrongRefundNo}
	switch {
	case b.SucceedAfterLookups > 0 && st.answers > b.SucceedAfterLookups:
		a.Status = recon.RefundChannelSucceeded
	case a.Status == "":
		a.Status = recon.RefundChannelPending
	}
	if a.Status == recon.RefundChannelNotFound {
		return a
	}
	a.RefundID = r.ChannelRefundID
	if a.RefundID == "" {
		a.RefundID = s.RefundID(r.RefundNo)
	}
	if a.Status == recon.RefundChannelSucceeded {
		if b.Amount != 0 {
			a.Amount = b.Amount
		}
		if b.Currency != "" {
			a.Currency = b.Currency
		}
		a.SucceededAt = s.shortlyAfter(r.CreatedAt, refundKey(r.RefundNo), "succeeded_at")
	}
	return a
}

// refundKey keeps a refund's hashes apart from an order's of the same
// number.
func refundKey(refundNo string) string { return "refund:" + refundNo }

// refundState returns the state of refundNo, creating it. s.mu must be
// held.
func (s *Sim) refundState(refundNo string) *orderState {
	st := s.refunds[refundNo]
	if st == nil {
		st = &orderState{}
		s.refunds[refundNo] = st
	}
	return st
}

// refundBehaviour returns the forced behaviour of r, or the one its seeded
// bucket gives. s.mu must be held.
func (s *Sim) refundBehaviour(r recon.Refund) (b RefundBehaviour, forced bool) {
	if b, ok := s.refundOverrides[r.RefundNo]; ok {
		return b, true
	}
	u := s.unit(refundKey(r.RefundNo), "bucket")
	buckets := []struct {
		rate float64
		b    RefundBehaviour
	}{
		{s.cfg.PaidRate, RefundBehaviour{Status: recon.RefundChannelSucceeded}},
		{s.cfg.FailedRate + s.cfg.ClosedRate, RefundBehaviour{Status: recon.RefundChannelFailed}},
		{s.cfg.NotFoundRate, RefundBehaviour{Status: recon.RefundChannelNotFound}},
		{s.cfg.LateRate, RefundBehaviour{Status: recon.RefundChannelPending, SucceedAfterLookups: s.cfg.LateAfter}},
		{s.cfg.AmountTamperRate, RefundBehaviour{Status: recon.RefundChannelSucceeded, Amount: r.Amount + 1}},
		{s.cfg.CurrencyTamperRate, RefundBehaviour{Status: recon.RefundChannelSucceeded,
			Currency: s.otherCurrency(recon.Order{OrderNo: refundKey(r.RefundNo), Currency: r.Currency})}},
		{s.cfg.BadSignatureRate, RefundBehaviour{Status: recon.RefundChannelSucceeded, BadSignature: true}},
		{s.cfg.RefundAbnormalRate, RefundBehaviour{Status: recon.RefundChannelAbnormal}},
	}
	var edge float64
	for _, bk := range buckets {
		edge += bk.rate
		if u < edge {
			return bk.b, false
		}
	}
	return RefundBehaviour{Status: recon.RefundChannelPending}, false
}

// renderRefund turns a refund answer into the HTTP reply a real httpjson
// channel would send at its refund lookup path.
func (s *Sim) renderRefund(r recon.Refund, a RefundAnswer) httpjson.Reply {
	switch a.Kind {
	case AnswerTransient, AnswerPermanent, AnswerRateLimited:
		return s.render(recon.Order{}, Answer{Kind: a.Kind, RetryAfter: a.RetryAfter})
	}
	if a.Malformed {
		return s.signedBytes(http.StatusOK, []byte(`{"code":"0000","data":{"refund":`), a.BadSignature)
	}
	if a.Status == recon.RefundChannelNotFound {
		return s.signedJSON(http.StatusNotFound, httpjson.RefundResponse{Code: httpjson.DefaultNotFoundCode, Msg: "refund not exist"}, a.BadSignature)
	}
	amount := a.Amount
	d := &httpjson.RefundData{Refund: a.AnsweredNo(r.RefundNo), Order: r.OrderNo, Status: string(a.Status), Amount: &amount,
		Currency: a.Currency, RefundTxnID: a.RefundID}
	if a.Status == recon.RefundChannelSucceeded {
		d.SucceededAt = a.SucceededAt.Format(time.RFC3339)
	}
	return s.signedJSON(http.StatusOK, httpjson.RefundResponse{Code: httpjson.DefaultSuccessCode, Msg: "success", Data: d}, a.BadSignature)
}

// serveRefund answers GET /refund/get_result?refundId=… as an httpjson
// channel does, about the refunds of refunds (nil: none).
func (s *Sim) serveRefund(refunds RefundSource) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		no := r.URL.Query().Get(httpjson.DefaultRefundParam)
		if no == "" {
			writeReply(w, s.errorReply(http.StatusBadRequest, "4001", "missing "+httpjson.DefaultRefundParam))
			return
		}
		rf, a, err := s.RefundAnswerFor(r.Context(), refunds, no)
		if err != nil {
			if r.Context().Err() == nil {
				writeReply(w, s.errorReply(http.StatusInternalServerError, "5001", "refund source unavailable"))
			}
			return
		}
		writeReply(w, s.renderRefund(rf, a))
	}
}

// refundsOf is the refund source behind orders, if it is one.
func refundsOf(orders OrderSource) RefundSource {
	rs, _ := orders.(RefundSource)
	return rs
}

// AddRefund adds or replaces refunds, for the server to answer about.
func (s *Orders) AddRefund(refunds ...recon.Refund) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range refunds {
		s.refunds[r.RefundNo] = r
		if r.ChannelRefundID != "" {
			s.byRefundID[r.ChannelRefundID] = r.RefundNo
		}
	}
}

var _ ChannelRefundSource = (*Orders)(nil)

// RefundByNo implements RefundSource.
func (s *Orders) RefundByNo(_ context.Context, refundNo string) (recon.Refund, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refunds[refundNo]
	return r, ok, nil
}

// RefundByChannelID implements ChannelRefundSource.
func (s *Orders) RefundByChannelID(_ context.Context, id string) (recon.Refund, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	no, ok := s.byRefundID[id]
	if !ok {
		return recon.Refund{}, false, nil
	}
	return s.refunds[no], true, nil
}
