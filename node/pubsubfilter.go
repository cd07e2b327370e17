package node

import (
	"github.com/libp2p/go-libp2p/core/peer"
)

// pubsubPeerFilter decides whether gossipsub exchanges anything about topic
// with peer p. It is called from gossipsub's goroutines.
func (n *Node) pubsubPeerFilter(p peer.ID, topic string) bool {
	return true
}
