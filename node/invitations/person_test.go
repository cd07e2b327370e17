package invitations

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestCountPerson: the invitations of a batch to one person's devices
// count once, as the person answered.
func TestCountPerson(t *testing.T) {
	bob, laptop, carol := peer.ID("bob"), peer.ID("laptop"), peer.ID("carol")
	rec := func(p, person peer.ID, st State) Record {
		return Record{Direction: Sent, Peer: p, Person: person, State: st, Batch: "b"}
	}
	for _, tc := range []struct {
		name string
		recs []Record
		want Tally
	}{
		{"both unanswered", []Record{rec(bob, bob, Delivered), rec(laptop, bob, Pending)}, Tally{Total: 1, NoAnswer: 1}},
		{"one accepted, one withdrawn", []Record{rec(bob, bob, Cancelled), rec(laptop, bob, Accepted)}, Tally{Total: 1, Accepted: 1}},
		{"one declined, one unanswered", []Record{rec(bob, bob, Declined), rec(laptop, bob, Delivered)}, Tally{Total: 1, NoAnswer: 1}},
		{"both declined", []Record{rec(bob, bob, Declined), rec(laptop, bob, Declined)}, Tally{Total: 1, Declined: 1}},
		{"a single-device contact beside", []Record{rec(bob, bob, Declined), rec(laptop, bob, Error), rec(carol, "", Accepted)}, Tally{Total: 2, Declined: 1, Accepted: 1}},
		{"no person: each counts", []Record{rec(bob, "", Accepted), rec(laptop, "", Pending)}, Tally{Total: 2, Accepted: 1, NoAnswer: 1}},
	} {
		if got := Count(tc.recs); got != tc.want {
			t.Errorf("%s: Count = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
