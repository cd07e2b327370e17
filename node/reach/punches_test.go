package reach

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
)

func TestPunchesRememberFailures(t *testing.T) {
	var p Punches
	failed, punched, other := peer.ID("failed"), peer.ID("punched"), peer.ID("other")
	p.Trace(&holepunch.Event{Remote: failed, Type: holepunch.EndHolePunchEvtT, Evt: &holepunch.EndHolePunchEvt{Success: false, Error: "all retries failed"}})
	p.Trace(&holepunch.Event{Remote: punched, Type: holepunch.EndHolePunchEvtT, Evt: &holepunch.EndHolePunchEvt{Success: true}})
	p.Trace(&holepunch.Event{Remote: other, Type: holepunch.StartHolePunchEvtT, Evt: &holepunch.StartHolePunchEvt{}})
	if !p.Failed(failed) || p.Failed(punched) || p.Failed(other) {
		t.Errorf("Failed: %v %v %v, want true false false", p.Failed(failed), p.Failed(punched), p.Failed(other))
	}
	var none *Punches
	if none.Failed(failed) {
		t.Error("a nil Punches remembers something")
	}
	for i := range punchPeers + 10 {
		p.Trace(&holepunch.Event{Remote: peer.ID(rune(i)), Evt: &holepunch.EndHolePunchEvt{}})
	}
	if len(p.failed) > punchPeers {
		t.Errorf("%d peers remembered, bound %d", len(p.failed), punchPeers)
	}
}
