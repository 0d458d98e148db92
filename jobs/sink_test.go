package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// TestSinkReceivesEveryNotification: with notify.sink every notification
// goes to the sink's URL, signed with the sink's secret, in the same format;
// the merchants' notify_url is not used, and a merchant recon does not know
// is no obstacle.
func TestSinkReceivesEveryNotification(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		merch := newMerchant(t, e.clock)
		e.addMerchant("m1", merch.url(), merchantSecret)
		sink := newMerchant(t, e.clock)
		sink.secret = "sink-secret"
		var ids []string
		for i, mid := range []string{"m1", "unknown-merchant"} {
			o := repotest.Order("sink-"+string(rune('a'+i)), nt0)
			o.MerchantID = mid
			db.Seed(t, &o)
			read, err := db.Store.GetOrder(context.Background(), o.ID)
			if err != nil {
				t.Fatal(err)
			}
			out := recon.Decide(read, recon.LookupResult{Status: recon.ChannelPaid, Amount: read.Amount, Currency: "CNY", TxnID: "T" + o.OrderNo},
				recon.Policy{}, nt0, false)
			if rep, err := db.Store.Commit(context.Background(), out, repo.CommitMeta{Source: "test", Now: nt0}); err != nil || rep.Result != repo.Applied {
				t.Fatalf("commit %s: %+v, %v", o.OrderNo, rep, err)
			}
			ids = append(ids, recon.NotificationID(o.OrderNo, recon.EventPaid))
		}
		d := e.dispatcher(db.Store, "d1")
		d.Sink = &jobs.NotifySink{URL: sink.url(), Secret: "sink-secret"}
		res := e.run(d)
		sink.check()
		if res.Delivered != 2 || merch.total.Load() != 0 {
			t.Fatalf("result %+v; merchant got %d posts, want 0", res, merch.total.Load())
		}
		for _, id := range ids {
			if sink.count(id) != 1 || sink.bodies[id] != e.get(id).Payload {
				t.Fatalf("sink got %d posts of %s, body %s", sink.count(id), id, sink.bodies[id])
			}
		}
		if err := recon.VerifySignature(merchantSecret, recon.SignPayload("sink-secret", nt0, nil), nil, nt0, time.Minute); err == nil {
			t.Fatal("the sink's signature verified with a merchant's secret")
		}
	})
}
