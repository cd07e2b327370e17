package node

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// EvtConnection is the event type of a change in how the node reaches a
// peer: directly, through a relay only, or not at all.
const EvtConnection = "peer.connection"

// ConnectionEvent is the payload of EvtConnection.
type ConnectionEvent struct {
	Peer peer.ID `json:"peer"`
	// State is "direct", "relayed" or "none".
	State string       `json:"state"`
	Addr  ma.Multiaddr `json:"addr,omitempty"`
}

// connWatch publishes EvtConnection when the best connection to a peer
// changes kind, such as a relayed connection upgraded by hole punching. Its
// callbacks run on the swarm's goroutines and do not block.
type connWatch struct {
	n     *Node
	mu    sync.Mutex
	state map[peer.ID]string
}

var _ network.Notifiee = (*connWatch)(nil)

func (w *connWatch) update(p peer.ID) {
	st, addr := "none", ma.Multiaddr(nil)
	if ci, ok := w.n.ConnTo(p); ok {
		st, addr = "direct", ci.Addr
		if ci.Relayed {
			st = "relayed"
		}
	}
	w.mu.Lock()
	changed := w.state[p] != st && !(w.state[p] == "" && st == "none")
	if st == "none" {
		delete(w.state, p)
	} else {
		w.state[p] = st
	}
	w.mu.Unlock()
	if changed {
		w.n.hub.Publish(EvtConnection, ConnectionEvent{Peer: p, State: st, Addr: addr})
	}
}

func (w *connWatch) Connected(_ network.Network, c network.Conn)    { w.update(c.RemotePeer()) }
func (w *connWatch) Disconnected(_ network.Network, c network.Conn) { w.update(c.RemotePeer()) }
func (w *connWatch) Listen(network.Network, ma.Multiaddr)           {}
func (w *connWatch) ListenClose(network.Network, ma.Multiaddr)      {}
