package node

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peercollab/peercollab/contacts"
)

// The connection budget. Keys cost nothing, so a peer that does not matter
// to this node must not be able to take the connections of those who do.
// Three layers keep room:
//
//   - go-libp2p's resource manager caps connections per IPv4 address (and
//     IPv6 /56) and their rate (Config.ConnsPerIP), and in all (its
//     autoscaled system limit);
//   - connBudget, a connection gater, lets strangers hold at most
//     Config.StrangerConns inbound connections. Contacts, session hosts
//     and members, protected peers (relays) and peers this node dialled
//     itself are not counted. When the budget is full, a stranger from an address that holds
//     fewer of the budget's connections than the most crowded address takes
//     the place of that address's newest connection; otherwise it is refused.
//     So many keys from few addresses cannot lock out a newcomer;
//   - trimIdle closes connections to strangers that were opened more than
//     Config.ConnGrace ago and carry no stream but the ever-open ones
//     (gossipsub, identify, ping) and no gossipsub mesh (the connection
//     manager trims only above ConnsHigh).
//
// A stranger here is a peer that is not a contact, shares no session with
// this node, and that the connection manager does not protect (relays).

// connBudget is the node's connection gater. Its methods run on the
// swarm's goroutines.
type connBudget struct {
	max   int // StrangerConns
	store *contacts.Store
	// sessionPeer tells whether a peer shares a session with this node.
	sessionPeer func(peer.ID) bool
	// h is set once the host exists; connections that arrive before are
	// let in.
	h atomic.Pointer[host.Host]

	// mu serialises the budget's decisions. pending holds the strangers let
	// in whose connections the swarm does not list yet, and closing the
	// connections closed to make room that it still lists, so that
	// handshakes finishing together cannot overdraw the budget.
	mu      sync.Mutex
	pending map[peer.ID]admitted
	closing map[string]time.Time
}

type admitted struct {
	src string
	at  time.Time
}

// settleAfter bounds how long an admission or an eviction waits to show in
// the swarm's list of connections.
const settleAfter = 5 * time.Second

func (b *connBudget) InterceptPeerDial(peer.ID) bool               { return true }
func (b *connBudget) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (b *connBudget) InterceptAccept(network.ConnMultiaddrs) bool  { return true }
func (b *connBudget) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// InterceptSecured applies the strangers' budget to an inbound connection
// from p, whose identity the handshake just proved.
func (b *connBudget) InterceptSecured(dir network.Direction, p peer.ID, cma network.ConnMultiaddrs) bool {
	hp := b.h.Load()
	if dir != network.DirInbound || hp == nil || b.max <= 0 || !b.stranger(*hp, p) {
		return true
	}
	h := *hp
	src := sourceKey(cma.RemoteMultiaddr())
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending, b.closing = map[peer.ID]admitted{}, map[string]time.Time{}
	}
	// held: per source, the strangers' inbound connections, nil standing
	// for one admitted but not listed yet (which cannot be evicted).
	held := map[string][]network.Conn{}
	total := 0
	listed := map[string]bool{}
	for _, c := range h.Network().Conns() {
		listed[c.ID()] = true
		if _, gone := b.closing[c.ID()]; gone || c.Stat().Direction != network.DirInbound || !b.stranger(h, c.RemotePeer()) {
			continue
		}
		delete(b.pending, c.RemotePeer())
		k := sourceKey(c.RemoteMultiaddr())
		held[k] = append(held[k], c)
		total++
	}
	for id, at := range b.closing {
		if !listed[id] || now.Sub(at) > settleAfter {
			delete(b.closing, id)
		}
	}
	for q, a := range b.pending {
		if now.Sub(a.at) > settleAfter {
			delete(b.pending, q)
			continue
		}
		held[a.src] = append(held[a.src], nil)
		total++
	}
	admit := func() bool {
		b.pending[p] = admitted{src: src, at: now}
		return true
	}
	if total < b.max {
		return admit()
	}
	var heavy string
	for k, cs := range held {
		if len(cs) > len(held[heavy]) {
			heavy = k
		}
	}
	var newest network.Conn
	for _, c := range held[heavy] {
		if c != nil && (newest == nil || c.Stat().Opened.After(newest.Stat().Opened)) {
			newest = c
		}
	}
	if newest == nil || len(held[heavy]) <= len(held[src])+1 {
		log.Debugw("stranger refused: connection budget full", "peer", p, "from", src)
		return false
	}
	log.Debugw("stranger connection closed to make room", "closed", newest.RemotePeer(), "from", heavy, "for", p)
	b.closing[newest.ID()] = now
	go newest.Close()
	return admit()
}

// stranger reports whether p counts against the strangers' budget.
func (b *connBudget) stranger(h host.Host, p peer.ID) bool {
	return !h.ConnManager().IsProtected(p, "") && !b.store.IsContact(p) && !b.sessionPeer(p)
}

// sourceKey groups connections by where they come from: the IPv4 address,
// or the IPv6 /56 (what one subscriber usually holds); a relayed
// connection counts for its relay's address.
func sourceKey(a ma.Multiaddr) string {
	ip, err := manet.ToIP(a)
	if err != nil {
		return a.String()
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return ip.String()
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 56).Masked().String()
}

// trimIdle closes the connections to strangers that are older than
// ConnGrace and idle: no stream open but those that always are, and no
// gossipsub mesh (which tags the peer in the connection manager).
func (n *Node) trimIdle() {
	grace := n.cfg.ConnGrace
	cm := n.host.ConnManager()
	for _, c := range n.host.Network().Conns() {
		p := c.RemotePeer()
		if time.Since(c.Stat().Opened) < grace || !n.budget.stranger(n.host, p) {
			continue
		}
		if ti := cm.GetTagInfo(p); ti != nil && ti.Value > 0 {
			continue
		}
		busy := slices.ContainsFunc(c.GetStreams(), func(s network.Stream) bool {
			return !slices.ContainsFunc(backgroundProtocols, func(pre string) bool {
				return strings.HasPrefix(string(s.Protocol()), pre)
			})
		})
		if !busy {
			log.Debugw("idle stranger connection closed", "peer", p, "addr", c.RemoteMultiaddr())
			c.Close()
		}
	}
}

// backgroundProtocols prefix the protocols whose streams stay open on an
// idle connection.
var backgroundProtocols = []string{"/meshsub/", "/floodsub/", "/ipfs/id/", "/ipfs/ping/", "/libp2p/autonat/"}

// trimLoop runs trimIdle every half grace period until the node closes.
func (n *Node) trimLoop() {
	t := time.NewTicker(max(n.cfg.ConnGrace/2, time.Second))
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.trimIdle()
		}
	}
}
