package repotest

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// EnvSeed names the variable that fixes the seed of randomised tests
// (kills, callback orders) to replay a failure.
const EnvSeed = "RECON_TEST_SEED"

// RandSeed returns the seed of a randomised test: RECON_TEST_SEED when set,
// otherwise a new one. It logs the seed so a failure can be replayed.
func RandSeed(t testing.TB) uint64 {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	seed := binary.LittleEndian.Uint64(b[:]) >> 1
	if v := os.Getenv(EnvSeed); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", EnvSeed, v, err)
		}
		seed = s
	}
	t.Logf("seed %d (replay with %s=%d)", seed, EnvSeed, seed)
	return seed
}

// Truth is what a channel finally says about an order.
type Truth struct {
	Status recon.ChannelStatus
	// Tampered: the channel says PAID, but not with the order's amount or
	// currency.
	Tampered bool
	// Unverifiable: the channel's answers never verify (bad signature): the
	// order must stay PENDING.
	Unverifiable bool
}

// Sources of audit rows written by recon itself; any other source (a
// payment callback in tests) is another writer.
var reconSources = map[string]bool{"reconcile": true, "backfill": true, "check": true}

// Ledger is what CheckLedger found, for the test's log.
type Ledger struct {
	Orders     int
	ByStatus   map[recon.Status]int
	ByOther    int // orders moved by another writer (a callback)
	Mismatches map[recon.MismatchKind]int
}

func (l Ledger) String() string {
	var parts []string
	for _, s := range []recon.Status{recon.StatusPending, recon.StatusPaid, recon.StatusFailed, recon.StatusClosed} {
		parts = append(parts, fmt.Sprintf("%s=%d", s, l.ByStatus[s]))
	}
	kinds := make([]string, 0, len(l.Mismatches))
	for k, n := range l.Mismatches {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	return fmt.Sprintf("%d orders: %s; moved by another writer %d; mismatches %s",
		l.Orders, strings.Join(parts, " "), l.ByOther, strings.Join(kinds, " "))
}

type ledgerOrder struct {
	ID         int64
	OrderNo    string
	MerchantID string
	Amount     int64
	Currency   string
	Status     string
	Version    int64
	Attempts   int64 `gorm:"column:query_attempts"`
}

type ledgerTransition struct {
	OrderID     int64
	FromStatus  string
	ToStatus    string
	FromVersion int64
	ToVersion   int64
	Source      string
}

type ledgerNote struct {
	OrderID int64
	Event   string
	Payload string
}

type ledgerMismatch struct {
	OrderID    int64
	Kind       string
	Resolution string
}

// CheckLedger checks, over every order of the database, the invariants that
// must hold whatever crashed, raced or failed while passes ran:
//
//   - nothing regressed and nothing moved twice: an order has at most one
//     audit row, from PENDING to a terminal state, and a PENDING order none;
//   - audit rows match the orders: the version equals the number of audit
//     rows, the audit row's versions are 0 -> 1 and its to_status is the
//     order's status;
//   - a terminal order has exactly one outbox row, for its event; a PENDING
//     order none.
//
// With truth (keyed by order_no; orders not in it are not judged), it also
// checks the end state against the channel: an order recon moved is where
// the channel says; an order the channel says is paid (untampered) and no
// other writer moved is PAID; a tampered order is PENDING with an
// AMOUNT_MISMATCH or CURRENCY_MISMATCH; an unverifiable order is PENDING.
// When settled is true every order must also have reached its end state:
// PAID, FAILED and CLOSED at the channel are terminal locally.
func CheckLedger(t testing.TB, s *repo.Store, truth map[string]Truth, settled bool) Ledger {
	t.Helper()
	db := s.DB()
	var orders []ledgerOrder
	var trs []ledgerTransition
	var notes []ledgerNote
	var ms []ledgerMismatch
	for _, q := range []struct {
		sql  string
		dest any
	}{
		{"SELECT id, order_no, merchant_id, amount, currency, status, version, query_attempts FROM payment_orders ORDER BY id", &orders},
		{"SELECT order_id, from_status, to_status, from_version, to_version, source FROM order_transitions ORDER BY id", &trs},
		{"SELECT order_id, event, payload FROM merchant_notifications", &notes},
		{"SELECT order_id, kind, resolution FROM recon_mismatches", &ms},
	} {
		if err := db.Raw(q.sql).Scan(q.dest).Error; err != nil {
			t.Fatalf("ledger: %s: %v", q.sql, err)
		}
	}
	trOf := map[int64][]ledgerTransition{}
	for _, tr := range trs {
		trOf[tr.OrderID] = append(trOf[tr.OrderID], tr)
	}
	notesOf := map[int64][]string{}
	payloadOf := map[int64]string{}
	for _, n := range notes {
		notesOf[n.OrderID] = append(notesOf[n.OrderID], n.Event)
		payloadOf[n.OrderID] = n.Payload
	}
	msOf := map[int64]map[string]bool{}
	led := Ledger{Orders: len(orders), ByStatus: map[recon.Status]int{}, Mismatches: map[recon.MismatchKind]int{}}
	for _, m := range ms {
		if msOf[m.OrderID] == nil {
			msOf[m.OrderID] = map[string]bool{}
		}
		msOf[m.OrderID][m.Kind] = true
		led.Mismatches[recon.MismatchKind(m.Kind)]++
	}
	var bad []string
	fail := func(o ledgerOrder, format string, args ...any) {
		if len(bad) < 20 {
			bad = append(bad, fmt.Sprintf("order %s (id %d, %s v%d): ", o.OrderNo, o.ID, o.Status, o.Version)+fmt.Sprintf(format, args...))
		}
	}
	for _, o := range orders {
		st := recon.Status(o.Status)
		led.ByStatus[st]++
		ts := trOf[o.ID]
		if o.Version != int64(len(ts)) {
			fail(o, "version %d but %d audit rows", o.Version, len(ts))
		}
		switch {
		case st == recon.StatusPending && len(ts) != 0:
			fail(o, "PENDING with audit rows %+v", ts)
		case st.Terminal() && len(ts) != 1:
			fail(o, "terminal with %d audit rows %+v", len(ts), ts)
		case len(ts) == 1:
			tr := ts[0]
			if tr.FromStatus != string(recon.StatusPending) || tr.ToStatus != o.Status || tr.FromVersion != 0 || tr.ToVersion != 1 {
				fail(o, "audit row %+v does not match the order", tr)
			}
		}
		if !st.Valid() {
			fail(o, "unknown status")
		}
		evs := notesOf[o.ID]
		switch {
		case st.Terminal() && (len(evs) != 1 || evs[0] != string(recon.EventFor(st))):
			fail(o, "terminal with outbox events %v, want exactly [%s]", evs, recon.EventFor(st))
		case st == recon.StatusPending && len(evs) != 0:
			fail(o, "PENDING with outbox events %v", evs)
		case len(evs) == 1:
			// What the merchant will be told is what the order says.
			var n recon.Notification
			if err := json.Unmarshal([]byte(payloadOf[o.ID]), &n); err != nil {
				fail(o, "outbox payload does not decode: %v", err)
			} else if d := n.Data; string(n.Event) != evs[0] || d.OrderNo != o.OrderNo || d.MerchantID != o.MerchantID ||
				d.Status != st || d.Amount != o.Amount || d.Currency != o.Currency {
				fail(o, "outbox payload %s does not match the order", payloadOf[o.ID])
			}
		}
		byOther := len(ts) == 1 && !reconSources[ts[0].Source]
		if byOther {
			led.ByOther++
		}
		tr, ok := truth[o.OrderNo]
		if !ok {
			continue
		}
		want := map[recon.ChannelStatus]recon.Status{
			recon.ChannelPaid: recon.StatusPaid, recon.ChannelFailed: recon.StatusFailed, recon.ChannelClosed: recon.StatusClosed,
		}[tr.Status]
		switch {
		case tr.Unverifiable || tr.Tampered:
			if !byOther && st != recon.StatusPending {
				fail(o, "recon moved an order whose answer never verified or disagreed (truth %+v)", tr)
			}
			if tr.Tampered && !byOther && !msOf[o.ID][string(recon.MismatchAmount)] && !msOf[o.ID][string(recon.MismatchCurrency)] && settled {
				fail(o, "tampered order without an amount or currency mismatch")
			}
		case byOther:
		case st.Terminal() && st != want:
			fail(o, "recon set %s but the channel says %s", st, tr.Status)
		case settled && want != "" && st != want:
			fail(o, "still %s but the channel says %s", st, tr.Status)
		}
	}
	known := map[int64]bool{}
	for _, o := range orders {
		known[o.ID] = true
	}
	for id := range trOf {
		if !known[id] && len(bad) < 20 {
			bad = append(bad, fmt.Sprintf("audit rows for order id %d, which does not exist", id))
		}
	}
	for id := range notesOf {
		if !known[id] && len(bad) < 20 {
			bad = append(bad, fmt.Sprintf("outbox rows for order id %d, which does not exist", id))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("ledger invariants broken (first %d):\n  %s\n%s", len(bad), strings.Join(bad, "\n  "), led)
	}
	return led
}
