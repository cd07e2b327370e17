package near

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/announce"
)

func newPeer(t testing.TB) peer.ID {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// step is one announcement given to a table, and what must follow.
type step struct {
	peer    int // index into the test's peers
	seq     uint64
	bye     bool
	src     string
	name    string
	want    outcome
	changes []contacts.ChangeType
}

func TestTable(t *testing.T) {
	local := addr("10.0.0.1")
	exempt := func(a netip.Addr) bool { return a.IsLoopback() || a == local }
	tests := []struct {
		name       string
		max, per   int
		steps      []step
		wantPeople int
	}{
		{"added, updated, repeat, replay", 10, 4, []step{
			{peer: 0, seq: 1, src: "10.0.0.2", name: "a", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 0, seq: 2, src: "10.0.0.2", name: "b", want: taken, changes: []contacts.ChangeType{contacts.Updated}},
			{peer: 0, seq: 3, src: "10.0.0.2", name: "b", want: taken},
			{peer: 0, seq: 3, src: "10.0.0.2", name: "c", want: stale},
			{peer: 0, seq: 1, src: "10.0.0.2", name: "a", want: stale},
		}, 1},
		{"a bye removes; a replay of the old announcement does not bring it back", 10, 4, []step{
			{peer: 0, seq: 5, src: "10.0.0.2", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 0, seq: 4, src: "10.0.0.2", bye: true, want: stale},
			{peer: 0, seq: 6, src: "10.0.0.2", bye: true, want: taken, changes: []contacts.ChangeType{contacts.Deleted}},
			{peer: 0, seq: 5, src: "10.0.0.2", want: stale},
			{peer: 0, seq: 7, src: "10.0.0.2", want: taken, changes: []contacts.ChangeType{contacts.Added}},
		}, 1},
		{"one address holds perAddr people; exempt addresses any number", 10, 2, []step{
			{peer: 0, seq: 1, src: "10.0.0.9", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 1, seq: 1, src: "10.0.0.9", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 2, seq: 1, src: "10.0.0.9", want: addrFull},
			{peer: 2, seq: 1, src: "127.0.0.1", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 3, seq: 1, src: "127.0.0.1", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 4, seq: 1, src: "10.0.0.1", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 5, seq: 1, src: "10.0.0.1", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 6, seq: 1, src: "10.0.0.1", want: taken, changes: []contacts.ChangeType{contacts.Added}},
		}, 7},
		{"full: a newcomer takes the place of the heaviest address's newest", 4, 3, []step{
			{peer: 0, seq: 1, src: "10.0.0.66", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 1, seq: 1, src: "10.0.0.66", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 2, seq: 1, src: "10.0.0.66", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 3, seq: 1, src: "10.0.0.2", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			// full; 10.0.0.3 holds 0 < 3: peer 2 (newest of .66) goes
			{peer: 4, seq: 1, src: "10.0.0.3", want: taken, changes: []contacts.ChangeType{contacts.Deleted, contacts.Added}},
			// .66 holds 2, .4 would hold 1: still lighter, peer 1 goes
			{peer: 5, seq: 1, src: "10.0.0.4", want: taken, changes: []contacts.ChangeType{contacts.Deleted, contacts.Added}},
			// every address holds 1 now: a newcomer is refused
			{peer: 6, seq: 1, src: "10.0.0.5", want: tableFull},
			// and the evicted cannot push back in from their crowded address
			{peer: 2, seq: 2, src: "10.0.0.66", want: tableFull},
			// the honest ones stay
			{peer: 3, seq: 2, src: "10.0.0.2", name: "still here", want: taken, changes: []contacts.ChangeType{contacts.Updated}},
		}, 4},
		{"a peer that moves is counted at its new address", 10, 1, []step{
			{peer: 0, seq: 1, src: "10.0.0.2", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 0, seq: 2, src: "10.0.0.3", want: taken},
			{peer: 1, seq: 1, src: "10.0.0.2", want: taken, changes: []contacts.ChangeType{contacts.Added}},
			{peer: 2, seq: 1, src: "10.0.0.3", want: addrFull},
		}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			peers := make([]peer.ID, 8)
			for i := range peers {
				peers[i] = newPeer(t)
			}
			tb := newTable(tc.max, tc.per, exempt)
			now := time.Now()
			for i, st := range tc.steps {
				r := announce.Record{Peer: peers[st.peer], Seq: st.seq, Bye: st.bye, DisplayName: st.name, Refresh: time.Second}
				env := fmt.Appendf(nil, "%d/%d/%v/%s", st.peer, st.seq, st.bye, st.name)
				got, changes := tb.apply(r, env, addr(st.src), now, uint64(i))
				if got != st.want {
					t.Fatalf("step %d: outcome %d, want %d", i, got, st.want)
				}
				var types []contacts.ChangeType
				for _, c := range changes {
					types = append(types, c.typ)
				}
				if fmt.Sprint(types) != fmt.Sprint(st.changes) {
					t.Fatalf("step %d: changes %v, want %v", i, types, st.changes)
				}
			}
			if len(tb.people) != tc.wantPeople {
				t.Fatalf("%d people, want %d", len(tb.people), tc.wantPeople)
			}
			total := 0
			for _, n := range tb.perSrc {
				total += n
			}
			if total != len(tb.people) || len(tb.envs) != len(tb.people) {
				t.Fatalf("counts out of step: %d per source, %d envelopes, %d people", total, len(tb.envs), len(tb.people))
			}
		})
	}
}

func TestTableExpiry(t *testing.T) {
	tb := newTable(10, 4, func(netip.Addr) bool { return false })
	p := newPeer(t)
	now := time.Now()
	tb.apply(announce.Record{Peer: p, Seq: 1, Refresh: time.Second}, []byte("e1"), addr("10.0.0.2"), now, 1)
	if ch := tb.expire(now.Add(announce.LostAfter(time.Second) - time.Millisecond)); len(ch) != 0 {
		t.Fatalf("expired early: %v", ch)
	}
	if ch := tb.expire(now.Add(announce.LostAfter(time.Second) + time.Millisecond)); len(ch) != 1 || ch[0].typ != contacts.Deleted {
		t.Fatalf("not expired: %v", ch)
	}
	// Its last announcement, replayed, does not bring it back.
	if out, _ := tb.apply(announce.Record{Peer: p, Seq: 1, Refresh: time.Second}, []byte("e1"), addr("10.0.0.2"), now, 2); out != stale {
		t.Fatalf("replay after expiry: %d", out)
	}
}

func TestLimiterSetBounded(t *testing.T) {
	l := limiterSet{perAddr: 1, burst: 1}
	for i := range maxLimiters {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if !l.allow(a, false) {
			t.Fatalf("address %d refused", i)
		}
	}
	// All busy: a newcomer is refused rather than someone forgotten.
	if l.allow(addr("11.0.0.1"), false) {
		t.Fatal("a new address was let in while the table is full of busy ones")
	}
	if l.allow(addr("10.0.0.0"), false) {
		t.Fatal("a limited address was forgotten")
	}
	if len(l.m) > maxLimiters {
		t.Fatalf("%d limiters", len(l.m))
	}
}
