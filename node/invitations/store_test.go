package invitations

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/protocols/invite"
)

// legacy is a record as stored before the index and the data were apart:
// data and card inline, no version.
func legacy(who inviter, dir Direction, st State, updated time.Time, data []byte) Record {
	inv := invitation(who, data, time.Hour)
	inv.Sent, inv.Expires = updated, updated.Add(time.Hour)
	r := Record{Invitation: inv, Direction: dir, Peer: who.id, PeerName: "Old", State: st, Updated: updated.UTC()}
	if dir == Received {
		r.Card = who.card.Marshal()
	}
	return r
}

// TestLegacyRecords: records of the older layout are moved apart,
// damaged ones dropped, and the unanswered beyond the budgets dropped,
// oldest kept, with strangers' expiries capped.
func TestLegacyRecords(t *testing.T) {
	b := newBench(t, Limits{StrangerInvitations: 2})
	b.stop()
	db, err := state.Open(filepath.Join(b.dir, state.InvitationsFile), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var kept, dropped []Record
	for i := range 3 {
		r := legacy(newInviter(t), Received, Pending, now.Add(time.Duration(i-3)*time.Minute), []byte{byte(i), 1, 2})
		if i < 2 {
			kept = append(kept, r)
		} else {
			dropped = append(dropped, r)
		}
	}
	declined := legacy(newInviter(t), Received, Declined, now.Add(-time.Hour), []byte("declined"))
	sent := legacy(newInviter(t), Sent, Delivered, now.Add(-time.Minute), []byte("sent"))
	for _, r := range append(append(kept, dropped...), declined, sent) {
		if err := db.Put(bucket, r.key(), r); err != nil {
			t.Fatal(err)
		}
	}
	wrongKey := legacy(newInviter(t), Received, Pending, now, nil)
	db.Put(bucket, "received/0123", wrongKey)
	db.Put(bucket, "received/garbage", json.RawMessage(`{"direction":"received","state":"on fire"}`))
	db.Put(payloadBucket, "received/orphan", payload{Data: []byte("orphan")})
	db.Close()
	b.start()

	for _, r := range kept {
		got, err := b.s.Get(r.ID)
		if err != nil || !bytes.Equal(got.Data, r.Data) || !bytes.Equal(got.Card, r.Card) || got.State != Pending {
			t.Fatalf("kept record: %+v, %v", got, err)
		}
		if want := r.Updated.Add(DefaultStrangerExpiry); !got.Expires.Equal(want) {
			t.Errorf("a stranger's old invitation expires at %v, want %v", got.Expires, want)
		}
	}
	if _, err := b.s.Get(dropped[0].ID); err == nil {
		t.Error("the newest unanswered invitation beyond the budget was kept")
	}
	if got, err := b.s.Get(sent.ID); err != nil || !bytes.Equal(got.Data, sent.Data) {
		t.Errorf("sent record: %+v, %v", got, err)
	}
	if got, err := b.s.Get(declined.ID); err != nil || got.Data != nil || got.State != Declined {
		t.Errorf("declined record: %+v, %v", got, err)
	}
	if n := len(b.s.List(Filter{})); n != 4 {
		t.Errorf("%d records listed, want 4", n)
	}
	keys := map[string]bool{}
	b.cfg.State.ForEach(bucket, func(k string, raw []byte) error {
		keys[k] = true
		if bytes.Contains(raw, []byte(`"data"`)) || bytes.Contains(raw, []byte(`"card"`)) {
			t.Errorf("index record %s holds data", k)
		}
		return nil
	})
	if len(keys) != 4 {
		t.Errorf("index keys %v", keys)
	}
	var payloads int
	b.cfg.State.ForEach(payloadBucket, func(k string, _ []byte) error { payloads++; return nil })
	if payloads != 3 {
		t.Errorf("%d payloads stored, want 3 (two pending, one sent)", payloads)
	}
	// The budget holds what was kept.
	if b.s.in.strangers.n != 2 {
		t.Errorf("the strangers' budget counts %d", b.s.in.strangers.n)
	}
	who := newInviter(t)
	if got := reason(t, b.invite(who, "/ip4/10.0.0.1/tcp/1", invitation(who, nil, time.Hour))); got != invite.InboxFull {
		t.Errorf("a new stranger: %q", got)
	}
}

// recordSeeds are index records as the service writes them and as older
// versions did, for the fuzz target.
func recordSeeds(t testing.TB) map[string][]byte {
	who := newInviter(t)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	out := map[string][]byte{}
	add := func(e *entry) {
		raw, err := json.Marshal(e.disk())
		if err != nil {
			t.Fatal(err)
		}
		out[e.key()] = raw
	}
	for _, st := range []State{Pending, Delivered, Accepted, Declined, Expired, Cancelled, Error} {
		for _, dir := range []Direction{Sent, Received} {
			r := legacy(who, dir, st, now, nil)
			r.Card = nil
			r.Reason = invite.InboxFull
			r.Source = "/ip4/10.0.0.1/tcp/4737"
			add(&entry{Record: r, stranger: dir == Received, cost: 600, payload: true})
		}
	}
	r := legacy(who, Received, Pending, now, []byte("inline data"))
	r.Unacked, r.SessionID, r.Batch = stepRespond, invite.NewID(), invite.NewID()
	raw, _ := json.Marshal(r)
	out[r.key()] = raw
	return out
}

// FuzzRecord: whatever the database holds, reading it back gives an error
// or a record within limits, without data in the index, that reads back
// the same when written again.
func FuzzRecord(f *testing.F) {
	for key, raw := range recordSeeds(f) {
		f.Add(key, raw)
		f.Add(key, raw[:len(raw)/2])
		f.Add("received/0123", raw)
	}
	f.Add("received/x", []byte(`{"direction":"received","state":"pending","cost":-1}`))
	f.Add("sent/x", []byte(`{"data":"AAAA","card":"AAAA"}`))
	f.Add("sent/x", []byte(`null`))
	f.Fuzz(func(t *testing.T, key string, raw []byte) {
		if p, err := decodePayload(raw); err == nil && (len(p.Data) > invite.MaxData || p.check() != nil) {
			t.Fatalf("payload of %d bytes read back", len(p.Data))
		}
		e, p, v, err := decodeRecord(key, raw)
		if err != nil {
			return
		}
		switch {
		case e.Data != nil || e.Card != nil || e.InviterCard != nil:
			t.Fatal("the index entry holds data")
		case e.key() != key:
			t.Fatalf("read under %q as %q", key, e.key())
		case e.Check() != nil, p.check() != nil, e.cost < 0 || e.cost > maxCost, v < 0 || v > recordVersion:
			t.Fatalf("out of limits: %+v", e)
		case (p.Data != nil || p.Card != nil) && !e.payload:
			t.Fatal("inline data not marked as stored")
		}
		again, err := json.Marshal(e.disk())
		if err != nil {
			t.Fatal(err)
		}
		e2, p2, _, err := decodeRecord(key, again)
		if err != nil || p2.Data != nil || p2.Card != nil {
			t.Fatalf("written back as %s, read as %v", again, err)
		}
		if third, _ := json.Marshal(e2.disk()); !bytes.Equal(again, third) || e2.src != e.src {
			t.Fatalf("not stable:\n%s\n%s", again, third)
		}
	})
}
