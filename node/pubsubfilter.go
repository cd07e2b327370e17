package node

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/protocols/endpoint"
)

// pubsubPeerFilter decides whether gossipsub exchanges anything about topic
// with peer p: whether p may be in the topic's mesh, get gossip about it,
// and be asked for or sent its messages. It is called from gossipsub's
// goroutine, and takes no lock that is held while pubsub is called.
//
//   - A session topic: the session's host and members as this node knows
//     them; no one for a session this node is not on (see
//     sessions.Service.TopicPeer).
//   - This node's own endpoint topic: the peers its access rules let watch
//     it (trusted contacts allowed to watch, people near); a blocked
//     contact or a stranger is kept out of the mesh.
//   - Another node's endpoint topic: that node alone, so that watchers do
//     not pass its updates to each other (a blocked watcher gets them from
//     no one).
//
// Any other topic is open. While the node is starting (the services are not
// all there yet), the filter refuses everything; gossipsub asks again at
// every heartbeat. The node's own messages are flooded to subscribers
// without asking this filter: the services publish them through an
// allow-list of their own (endpoint.Publish, session.Publish).
func (n *Node) pubsubPeerFilter(p peer.ID, topic string) bool {
	if !n.started.Load() { // set last in startServices: once it is, all is set
		return false
	}
	if allowed, ours := n.sessions.TopicPeer(topic, p); ours {
		return allowed
	}
	owner, err := endpoint.TopicOwner(topic)
	if err != nil {
		return true
	}
	if owner == n.host.ID() {
		_, err := n.access(p)
		return err == nil
	}
	return p == owner
}
