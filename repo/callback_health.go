package repo

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/recon-dev/recon"
)

// ChannelDay is one channel's callback health on one day: how its orders
// were settled (by a notification, or by lookups and statements alone,
// whose notification never came), how many notifications arrived, and how
// late after the channel's paid time.
type ChannelDay struct {
	Channel string
	Day     string // YYYY-MM-DD in the caller's time zone
	// Settled counts orders moved out of PENDING that day, by source
	// (callback, reconcile, backfill, statement, console, ...).
	Settled map[string]int64
	// ByCallback is Settled["callback"]; WithoutCallback counts the orders
	// settled by another source for which no notification was ever
	// received.
	ByCallback, WithoutCallback int64
	// Callbacks counts the events received that day (each once),
	// Duplicates their repeated deliveries, Refused those still recorded
	// as ORDER_UNKNOWN.
	Callbacks, Duplicates, Refused int64
	// LatenessP50 and LatenessP99 are the time from the channel's paid
	// time to the first delivery of its notification (LatenessN of them).
	LatenessP50, LatenessP99 time.Duration
	LatenessN                int
}

// settlement is one transition out of PENDING with its order's channel.
type settlement struct {
	OrderID   int64
	Source    string
	CreatedAt time.Time
	Callback  bool // a notification about the order was received
}

// settlements reads the transitions out of PENDING created in [from, to),
// with whether the order ever had a notification, and resolves each
// order's channel (keyed by order id).
func (s *Store) settlements(ctx context.Context, from, to time.Time) ([]settlement, map[int64]string, error) {
	var rows []settlement
	lo, loArgs := s.timeCmp("t.created_at", ">=", dbTime(from))
	hi, hiArgs := s.timeCmp("t.created_at", "<", dbTime(to))
	q := `SELECT t.order_id AS order_id, t.source AS source, t.created_at AS created_at,
		EXISTS (SELECT 1 FROM recon_callbacks c WHERE c.order_id = t.order_id) AS callback
		FROM order_transitions t WHERE t.from_status = ? AND ` + lo + " AND " + hi
	if err := s.db.WithContext(ctx).Raw(q, append(append([]any{recon.StatusPending}, loArgs...), hiArgs...)...).Scan(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("read settlements: %w", err)
	}
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.OrderID)
	}
	chans, err := s.channelsOf(ctx, ids)
	return rows, chans, err
}

// channelsOf maps order refs to their channels.
func (s *Store) channelsOf(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := map[int64]string{}
	if s.orders != nil {
		byID, err := s.mappedOrdersByID(ctx, ids)
		if err != nil {
			return nil, err
		}
		for id, o := range byID {
			out[id] = o.Channel
		}
		return out, nil
	}
	for start := 0; start < len(ids); start += rowsPerInsert {
		var rows []struct {
			ID      int64
			Channel string
		}
		if err := s.db.WithContext(ctx).Table("payment_orders").Select("id, channel").
			Where("id IN ?", ids[start:min(start+rowsPerInsert, len(ids))]).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("read channels of orders: %w", err)
		}
		for _, r := range rows {
			out[r.ID] = r.Channel
		}
	}
	return out, nil
}

// SettledBySource counts the orders moved out of PENDING in [from, to) by
// channel and source.
func (s *Store) SettledBySource(ctx context.Context, from, to time.Time) (map[[2]string]int64, error) {
	rows, chans, err := s.settlements(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := map[[2]string]int64{}
	for _, r := range rows {
		out[[2]string{chans[r.OrderID], r.Source}]++
	}
	return out, nil
}

// CallbackHealth is each channel's callback health per day in loc, for
// the days in [from, to), newest first, then by channel.
func (s *Store) CallbackHealth(ctx context.Context, from, to time.Time, loc *time.Location) ([]ChannelDay, error) {
	days := map[[2]string]*ChannelDay{}
	day := func(ch string, t time.Time) *ChannelDay {
		k := [2]string{ch, t.In(loc).Format(time.DateOnly)}
		d := days[k]
		if d == nil {
			d = &ChannelDay{Channel: ch, Day: k[1], Settled: map[string]int64{}}
			days[k] = d
		}
		return d
	}
	rows, chans, err := s.settlements(ctx, from, to)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		d := day(chans[r.OrderID], r.CreatedAt)
		d.Settled[r.Source]++
		switch {
		case r.Source == "callback":
			d.ByCallback++
		case !r.Callback:
			d.WithoutCallback++
		}
	}
	var cbs []struct {
		Channel    string
		Outcome    string
		Duplicates int64
		PaidAt     *time.Time
		ReceivedAt time.Time
	}
	q := s.db.WithContext(ctx).Table("recon_callbacks").Select("channel, outcome, duplicates, paid_at, received_at")
	q = s.whereTime(s.whereTime(q, "received_at", ">=", dbTime(from)), "received_at", "<", dbTime(to))
	if err := q.Scan(&cbs).Error; err != nil {
		return nil, fmt.Errorf("read callbacks: %w", err)
	}
	late := map[*ChannelDay][]time.Duration{}
	for _, c := range cbs {
		d := day(c.Channel, c.ReceivedAt)
		d.Callbacks++
		d.Duplicates += c.Duplicates
		if c.Outcome == string(recon.CallbackOrderUnknown) {
			d.Refused++
		}
		if c.PaidAt != nil && c.Outcome != string(recon.CallbackIgnored) {
			late[d] = append(late[d], max(c.ReceivedAt.Sub(*c.PaidAt), 0))
		}
	}
	for d, l := range late {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		d.LatenessN, d.LatenessP50, d.LatenessP99 = len(l), quantile(l, 0.50), quantile(l, 0.99)
	}
	out := make([]ChannelDay, 0, len(days))
	for _, d := range days {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Day != out[j].Day {
			return out[i].Day > out[j].Day
		}
		return out[i].Channel < out[j].Channel
	})
	return out, nil
}

// quantile is the nearest-rank q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
