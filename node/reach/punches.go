package reach

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
)

// punchMemory is how long a failed hole punch keeps a peer from being
// redialled for another (see upgradeRelayed); punchPeers bounds the table.
const (
	punchMemory = 10 * time.Minute
	punchPeers  = 4096
)

// Punches remembers the peers with which a hole punch failed: go-libp2p's
// DCUtR tries three times by itself, and when it gives up (a symmetric
// NAT on either side) redialling the relay to try again only replaces a
// working circuit with a new one, which may leave the peer with no usable
// connection for seconds. It is a holepunch.EventTracer (hand it to
// holepunch.WithTracer or WithMetricsAndEventTracer); the zero value is
// ready, and a nil *Punches remembers nothing.
type Punches struct {
	mu     sync.Mutex
	failed map[peer.ID]time.Time
}

var _ holepunch.EventTracer = (*Punches)(nil)

// Trace takes go-libp2p's hole-punching events: a failed end of a hole
// punch, on either side, is remembered.
func (p *Punches) Trace(evt *holepunch.Event) {
	e, ok := evt.Evt.(*holepunch.EndHolePunchEvt)
	if !ok || e.Success {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.failed == nil {
		p.failed = map[peer.ID]time.Time{}
	}
	if len(p.failed) >= punchPeers {
		for id, t := range p.failed {
			if now.Sub(t) > punchMemory {
				delete(p.failed, id)
			}
		}
		if len(p.failed) >= punchPeers {
			return
		}
	}
	p.failed[evt.Remote] = now
}

// Failed reports whether a hole punch with id failed in the last
// punchMemory.
func (p *Punches) Failed(id peer.ID) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.failed[id]
	return ok && time.Since(t) < punchMemory
}
