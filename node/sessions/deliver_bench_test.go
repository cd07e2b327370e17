package sessions

import (
	"testing"

	psession "github.com/peercollab/peercollab/protocols/session"
)

// BenchmarkDeliver measures a member's taking of one message in order:
// keeping it, opening it, storing it in the history with the progress (one
// write) and publishing it.
func BenchmarkDeliver(b *testing.B) {
	r := newRig(b)
	s := r.service()
	defer r.stop(s)
	key := psession.NewKey(1)
	x := r.member(s, key)
	ds := make([]psession.Data, b.N)
	for i := range ds {
		ds[i], _ = psession.Seal(fuzzSID, r.m2Key.Sign, r.m2, uint64(i+1), key, []byte("a chat line of some length"))
	}
	b.ResetTimer()
	for i := range ds {
		x.mu.Lock()
		x.takeLocked(&ds[i], r.m2)
		x.mu.Unlock()
	}
}
