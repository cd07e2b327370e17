package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
)

// ErrUnreachable means no connection to a peer could be made.
var ErrUnreachable = errors.New("node: peer is unreachable")

// ErrBadTarget means a peer was named in a way that is neither a multiaddr,
// a peer ID nor a contact.
var ErrBadTarget = errors.New("node: not a peer ID, contact or /p2p/ multiaddr")

// Resolve turns what a user typed into a peer and the addresses known for
// it: a multiaddr ending in /p2p/ID, a peer ID, or a contact's nickname or
// unique prefix.
func (n *Node) Resolve(target string) (peer.AddrInfo, error) {
	if strings.HasPrefix(target, "/") {
		a, err := ma.NewMultiaddr(target)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("%w: %v", ErrBadTarget, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("%w: %q has no /p2p/ part", ErrBadTarget, target)
		}
		return *ai, nil
	}
	c, err := n.store.Resolve(target)
	if err == nil {
		return peer.AddrInfo{ID: c.PeerID, Addrs: c.Addrs}, nil
	}
	if id, derr := peer.Decode(target); derr == nil {
		return peer.AddrInfo{ID: id}, nil
	}
	if errors.Is(err, contacts.ErrContactNotFound) {
		return peer.AddrInfo{}, fmt.Errorf("%w: %q", ErrBadTarget, target)
	}
	return peer.AddrInfo{}, err
}

// Connect makes sure the node has a connection to ai, relayed connections
// included.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if ai.ID == n.host.ID() {
		return fmt.Errorf("%w: that is this node", ErrUnreachable)
	}
	n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	if sw, ok := n.host.Network().(*swarm.Swarm); ok && n.host.Network().Connectedness(ai.ID) != network.Connected {
		// Every caller paces its own retries; the swarm's dial backoff
		// would add seconds after a refusal that has passed already (a
		// busy peer's handshake limit).
		sw.Backoff().Clear(ai.ID)
	}
	if err := n.host.Connect(network.WithAllowLimitedConn(ctx, "peercollab"), ai); err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return nil
}

// ConnInfo describes the connection in use to a peer.
type ConnInfo struct {
	Addr    ma.Multiaddr `json:"addr"`
	Relayed bool         `json:"relayed"`
}

// ConnTo describes the best open connection to p (a direct one if any).
func (n *Node) ConnTo(p peer.ID) (ConnInfo, bool) {
	var best *ConnInfo
	for _, c := range n.host.Network().ConnsToPeer(p) {
		ci := ConnInfo{Addr: c.RemoteMultiaddr(), Relayed: c.Stat().Limited || isCircuit(c.RemoteMultiaddr())}
		if best == nil || (best.Relayed && !ci.Relayed) {
			best = &ci
		}
	}
	if best == nil {
		return ConnInfo{}, false
	}
	return *best, true
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// PingResult is one round trip of a ping.
type PingResult struct {
	Seq  int           `json:"seq"`
	RTT  time.Duration `json:"rtt_ns"`
	Conn ConnInfo      `json:"conn"`
	// Error is set when this round trip failed.
	Error string `json:"error,omitempty"`
}

// Ping connects to target and measures count round trips of libp2p's ping
// protocol, one per interval. It stops early when ctx ends.
func (n *Node) Ping(ctx context.Context, target string, count int, interval time.Duration) (peer.ID, []PingResult, error) {
	ai, err := n.Resolve(target)
	if err != nil {
		return "", nil, err
	}
	if strings.HasPrefix(target, "/") {
		err = n.Connect(ctx, ai) // exactly the address given
	} else {
		err = n.connectWith(ctx, ai.ID, ai.Addrs) // every address known, and the DHT
	}
	if err != nil {
		return ai.ID, nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := ping.Ping(pctx, n.host, ai.ID)
	var out []PingResult
	for i := 1; i <= count; i++ {
		if i > 1 {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return ai.ID, out, nil
			}
		}
		r, ok := <-results
		if !ok {
			break
		}
		conn, _ := n.ConnTo(ai.ID)
		pr := PingResult{Seq: i, RTT: r.RTT, Conn: conn}
		if r.Error != nil {
			pr.Error = r.Error.Error()
		}
		out = append(out, pr)
		if r.Error != nil {
			break
		}
	}
	return ai.ID, out, nil
}

// connectPeer connects to p with every address the node knows for it: its
// contact card's, its People Near Me entry's, the peerstore's.
func (n *Node) connectPeer(ctx context.Context, p peer.ID) error {
	return n.connectWith(ctx, p, nil)
}

// connectWith is connectPeer with more addresses to try. When none works,
// the peer's current addresses are looked up in the own DHT and tried,
// then, in public mode, under its rendezvous key on the public DHT.
func (n *Node) connectWith(ctx context.Context, p peer.ID, addrs []ma.Multiaddr) error {
	ai := peer.AddrInfo{ID: p, Addrs: append(addrs, n.lastAddrs(p)...)}
	if person, ok := n.near.Get(p); ok {
		ai.Addrs = append(ai.Addrs, person.Addrs...)
	}
	err := n.Connect(ctx, ai)
	if err == nil || n.Scope()&ScopeInternet == 0 {
		return err
	}
	found, lerr := n.Locate(ctx, p)
	if lerr == nil {
		if err = n.Connect(ctx, peer.AddrInfo{ID: p, Addrs: found}); err == nil {
			return nil
		}
	}
	if n.public.Load() == nil {
		return err
	}
	// Public mode: the contact's rendezvous record on the public DHT
	// (bounded by public.LookupTimeout; the first record that arrives).
	found, lerr = n.locatePublic(ctx, p)
	if lerr != nil {
		return err
	}
	n.host.Peerstore().AddAddrs(p, found, peerstore.RecentlyConnectedAddrTTL)
	n.keepAddrs(p, found)
	return n.Connect(ctx, peer.AddrInfo{ID: p, Addrs: found})
}

// lastAddrs are the addresses of p as last known when p is a contact or
// another device of a contact's person.
func (n *Node) lastAddrs(p peer.ID) []ma.Multiaddr {
	c, err := n.store.PersonOf(p)
	if err != nil {
		return nil
	}
	if c.PeerID == p {
		return c.Addrs
	}
	d, _ := c.Device(p)
	return d.Addrs
}

// keepAddrs keeps addrs, found for p, as p's last known addresses when p
// is a contact or another device of a contact's person.
func (n *Node) keepAddrs(p peer.ID, addrs []ma.Multiaddr) {
	c, err := n.store.PersonOf(p)
	if err != nil {
		return
	}
	n.store.Update(c.PeerID, func(c *contacts.Contact) error {
		if c.PeerID == p {
			c.Addrs = addrs
		}
		for i := range c.Devices {
			if c.Devices[i].Device == p {
				c.Devices[i].Addrs = addrs
			}
		}
		return nil
	})
}

// Locate finds p's current addresses through the DHT, and keeps them in
// p's contact entry when p is a contact.
func (n *Node) Locate(ctx context.Context, p peer.ID) ([]ma.Multiaddr, error) {
	addrs, err := n.reach.Locate(ctx, p)
	if err != nil {
		return nil, err
	}
	n.host.Peerstore().AddAddrs(p, addrs, peerstore.RecentlyConnectedAddrTTL)
	n.keepAddrs(p, addrs)
	return addrs, nil
}
