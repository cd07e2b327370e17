// Package reach keeps a node reachable beyond its subnet and finds others
// there: reservations on its static relays (circuit relay v2), so that
// peers behind other NATs can dial it through them, and a signed record of
// its addresses in a Kademlia DHT under our own protocol prefix, which a
// contact whose card has gone stale can be found by.
//
// Reservations are kept by the service itself rather than by go-libp2p's
// AutoRelay: a node knows its relays, must be able to drop them when it
// signs out of the Internet scope, and must renew them at once when a relay
// comes back. Each relay is watched every couple of seconds; a lost
// reservation is renewed with backoff.
package reach

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	rec "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/node/internal/retry"
)

var log = logging.Logger("peercollab/reach")

// ProtocolPrefix is the prefix of our DHT's protocols (/peercollab/kad/1.0.0),
// which keeps our nodes out of the public IPFS DHT.
const ProtocolPrefix = "/peercollab"

// Timings.
const (
	// RepublishEvery is how often a signed-in node puts its address record.
	RepublishEvery = 10 * time.Minute
	// checkEvery is how often reservations and addresses are looked at.
	checkEvery = 2 * time.Second
	// renewBefore renews a reservation this long before it expires.
	renewBefore = 5 * time.Minute
)

// ErrNoDHT means the node knows no DHT to ask (no relay or bootstrap peer).
var ErrNoDHT = errors.New("reach: no DHT: configure a relay or a bootstrap peer")

// Config is what the service needs from its node.
type Config struct {
	Host host.Host
	// Relays are the static relays to keep reservations with.
	Relays []peer.AddrInfo
	// Bootstrap are the DHT's entry points (the relays are added to them).
	Bootstrap []peer.AddrInfo
	// Server makes this node a DHT server (a relay or bootstrap node).
	Server bool
	// Record returns this node's address record: a signed peer record
	// (envelope bytes) of its current addresses.
	Record func() ([]byte, error)
	// Addrs returns the node's current addresses, to notice changes.
	Addrs func() []ma.Multiaddr
	// Refresh, when set, says which peers' relayed connections to renew
	// before a relay's limits cut them (the node: session peers): see
	// refreshCircuits.
	Refresh func(peer.ID) bool
	// Punches, when set, tells of hole punches that failed (the host's
	// hole-punching service must trace into it): a relayed peer with which
	// one failed is not redialled to try again.
	Punches *Punches
	// While, when set, runs for each signed-in period, from Start until
	// its context ends at Stop or Close (public mode runs there).
	While func(ctx context.Context)
}

// Service keeps reservations and the address record. Its methods are safe
// for concurrent use.
type Service struct {
	cfg Config
	dht *dht.IpfsDHT // nil without a DHT
	ctx context.Context
	end context.CancelFunc
	wg  sync.WaitGroup

	mu      sync.Mutex
	stop    context.CancelFunc // ends the signed-in period
	running sync.WaitGroup
	status  map[peer.ID]*RelayStatus
}

// RelayStatus is how a node stands with one of its relays.
type RelayStatus struct {
	Relay     peer.ID   `json:"relay"`
	Reserved  bool      `json:"reserved"`
	Expires   time.Time `json:"expires,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// New starts the DHT (when there is a relay, a bootstrap peer, or Server).
// Reservations and the record start with Start.
func New(cfg Config) (*Service, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, ctx: ctx, end: cancel, status: map[peer.ID]*RelayStatus{}}
	for _, r := range cfg.Relays {
		s.status[r.ID] = &RelayStatus{Relay: r.ID}
	}
	boot := append(append([]peer.AddrInfo(nil), cfg.Bootstrap...), cfg.Relays...)
	if len(boot) == 0 && !cfg.Server {
		return s, nil
	}
	mode := dht.ModeClient
	if cfg.Server {
		mode = dht.ModeServer
	}
	d, err := dht.New(cfg.Host, dht.Mode(mode), dht.ProtocolPrefix(ProtocolPrefix),
		dht.Validator(rec.NamespacedValidator{Namespace: Validator{}}), dht.DisableProviders(),
		dht.BootstrapPeers(boot...), dht.MaxRecordAge(RecordTTL))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	s.dht = d
	return s, nil
}

// Close stops everything. It is idempotent.
func (s *Service) Close() error {
	s.Stop()
	s.end()
	s.wg.Wait()
	if s.dht != nil {
		return s.dht.Close()
	}
	return nil
}

// Start begins the signed-in period: reservations with every relay and
// the address record in the DHT. It is idempotent.
func (s *Service) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil || s.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.stop = cancel
	for _, r := range s.cfg.Relays {
		s.running.Go(func() { s.keepReservation(ctx, r) })
	}
	if s.dht != nil {
		s.running.Go(func() { s.keepRecord(ctx) })
	}
	s.running.Go(func() { s.upgradeRelayed(ctx) })
	if s.cfg.Refresh != nil {
		s.running.Go(func() { s.refreshCircuits(ctx) })
	}
	if s.cfg.While != nil {
		s.running.Go(func() { s.cfg.While(ctx) })
	}
}

// Stop ends the signed-in period: the relays are disconnected (which ends
// the reservations) and the record is no longer renewed (it drops out of
// the DHT within RecordTTL). It is idempotent.
func (s *Service) Stop() {
	s.mu.Lock()
	stop := s.stop
	s.stop = nil
	s.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	s.running.Wait()
	for _, r := range s.cfg.Relays {
		s.cfg.Host.Network().ClosePeer(r.ID)
		s.setStatus(r.ID, func(st *RelayStatus) { st.Reserved, st.Expires = false, time.Time{} })
	}
}

// Relays returns the state of every reservation.
func (s *Service) Relays() []RelayStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RelayStatus, 0, len(s.cfg.Relays))
	for _, r := range s.cfg.Relays {
		out = append(out, *s.status[r.ID])
	}
	return out
}

func (s *Service) setStatus(p peer.ID, fn func(*RelayStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.status[p]; ok {
		fn(st)
	}
}

// keepReservation holds a reservation with relay r until ctx ends: it
// reserves, renews before expiry, and reserves again (with backoff) when
// the relay was lost.
func (s *Service) keepReservation(ctx context.Context, r peer.AddrInfo) {
	backoff := retry.New(time.Second, 30*time.Second)
	var expires time.Time
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		connected := s.cfg.Host.Network().Connectedness(r.ID) == network.Connected
		if !connected || time.Until(expires) < renewBefore {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			rsvp, err := client.Reserve(rctx, s.cfg.Host, r)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Debugw("relay reservation", "relay", r.ID, "error", err)
				s.setStatus(r.ID, func(st *RelayStatus) { st.Reserved, st.LastError = false, err.Error() })
				expires = time.Time{}
				if !backoff.Wait(ctx) {
					return
				}
				continue
			}
			expires = rsvp.Expiration
			backoff.Reset()
			log.Infow("relay reservation", "relay", r.ID, "expires", expires)
			s.setStatus(r.ID, func(st *RelayStatus) { st.Reserved, st.Expires, st.LastError = true, expires, "" })
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// keepRecord puts the node's address record into the DHT at start, when
// its addresses change, and every RepublishEvery.
func (s *Service) keepRecord(ctx context.Context) {
	var last string
	var put time.Time
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		addrs := fmt.Sprint(s.cfg.Addrs())
		if addrs != last || time.Since(put) > RepublishEvery {
			if err := s.publish(ctx); err != nil {
				log.Debugw("put address record", "error", err)
			} else {
				last, put = addrs, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) publish(ctx context.Context) error {
	value, err := s.cfg.Record()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.dht.PutValue(ctx, Key(s.cfg.Host.ID()), value)
}

// DHTStatus tells whether the node has a DHT (a relay or bootstrap peer is
// configured) and how many peers its routing table holds.
func (s *Service) DHTStatus() (has bool, servers int) {
	if s.dht == nil {
		return false, 0
	}
	return true, s.dht.RoutingTable().Size()
}

// Locate finds p's current addresses through its record in the DHT.
func (s *Service) Locate(ctx context.Context, p peer.ID) ([]ma.Multiaddr, error) {
	if s.dht == nil {
		return nil, ErrNoDHT
	}
	value, err := s.dht.GetValue(ctx, Key(p))
	if err != nil {
		return nil, fmt.Errorf("reach: no address record of %s in the DHT: %w", p, err)
	}
	pr, err := parseRecord(Key(p), value, time.Now())
	if err != nil {
		return nil, err
	}
	return pr.Addrs, nil
}

// Upgrades of relayed connections.
const (
	// upgradeCheck is how often relayed connections are looked at.
	upgradeCheck = time.Second
	// upgradeAge is how old a relayed connection must be before it is
	// redialled: go-libp2p's own hole punch on arrival gets its chance.
	upgradeAge = time.Second
	// upgradeEvery spaces the attempts for one peer.
	upgradeEvery    = 5 * time.Second
	upgradeAttempts = 3
)

// upgradeRelayed gives hole punching a second chance. go-libp2p attempts
// DCUtR once, when a relayed connection arrives, and only if the receiving
// node can hole punch by then (it needs to have seen a public address of its
// own); a connection made earlier stays relayed for good. So, while this node
// can hole punch, every second it takes each peer it reaches only through
// connections it dialled over a relay at least upgradeAge ago, where the
// peer speaks DCUtR, and dials it through the relay afresh (see renew: the
// old connection is closed between two streams, so a session on it loses
// nothing): the peer sees a new inbound relayed connection and tries. At
// most upgradeAttempts times per peer, upgradeEvery apart, and never once a
// hole punch with the peer failed (Config.Punches: go-libp2p gives up after
// its own three tries, as behind a symmetric NAT, which never lets one
// through; the redial would only put the session on a fresh circuit).
func (s *Service) upgradeRelayed(ctx context.Context) {
	tried := map[peer.ID]int{}
	last := map[peer.ID]time.Time{}
	t := time.NewTicker(upgradeCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h := s.cfg.Host
		if !slices.Contains(h.Mux().Protocols(), holepunch.Protocol) {
			continue
		}
		for _, p := range h.Network().Peers() {
			conns := h.Network().ConnsToPeer(p)
			if len(conns) == 0 || tried[p] >= upgradeAttempts || time.Since(last[p]) < upgradeEvery || !onlyDialledRelayed(conns) {
				continue
			}
			if slices.ContainsFunc(conns, func(c network.Conn) bool { return time.Since(c.Stat().Opened) < upgradeAge }) {
				continue
			}
			if ok, _ := h.Peerstore().SupportsProtocols(p, holepunch.Protocol); len(ok) == 0 || s.cfg.Punches.Failed(p) {
				continue
			}
			tried[p]++
			last[p] = time.Now()
			log.Debugw("redial a relayed peer for hole punching", "peer", p, "attempt", tried[p])
			s.renew(ctx, p, conns)
		}
	}
}

// circuitRefresh is CircuitRefresh; tests shorten it.
var circuitRefresh = CircuitRefresh

// Renewal of relayed connections.
const (
	// CircuitRefresh is how old the newest relayed connection to a peer
	// may grow before a new one replaces it. Relays limit circuits (go-libp2p:
	// 2 minutes and 128 KiB each way, which a session of a 1 KiB message a
	// second reaches in about 40 s); a circuit cut mid-message loses it
	// until the session repairs it seconds later, while a replaced one is
	// closed between streams.
	CircuitRefresh = 20 * time.Second
	// drainWait bounds the wait for a moment when the old circuits carry
	// no stream; they are closed then anyway.
	drainWait = 5 * time.Second
	// streamAge: a stream open longer is long-lived, not a message.
	streamAge = 2 * time.Second
)

// refreshCircuits renews relayed connections before the relay's limits
// cut them: every relayProbeEvery, every peer that cfg.Refresh picks and
// that this node reaches only through relayed connections, the newest of
// which it dialled itself CircuitRefresh ago, is renewed (see renew); the
// relays that carry them are probed first (see probeRelay).
func (s *Service) refreshCircuits(ctx context.Context) {
	t := time.NewTicker(relayProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h := s.cfg.Host
		// The relays that carry circuits to session peers, and whose.
		carried := map[peer.ID][]peer.ID{}
		dialled := map[peer.ID]bool{} // peers this node dialled a circuit to
		var due []peer.ID
		for _, p := range h.Network().Peers() {
			conns := h.Network().ConnsToPeer(p)
			newest := newestRelayed(conns)
			if newest == nil || !s.cfg.Refresh(p) {
				continue
			}
			for _, c := range conns {
				if r, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_P2P); err == nil {
					if id, err := peer.Decode(r); err == nil && !slices.Contains(carried[id], p) {
						carried[id] = append(carried[id], p)
					}
				}
				dialled[p] = dialled[p] || c.Stat().Direction == network.DirOutbound
			}
			if newest.Stat().Direction == network.DirOutbound && time.Since(newest.Stat().Opened) >= circuitRefresh {
				due = append(due, p)
			}
		}
		// Dead relays first: renewing through one would wait for nothing.
		for relay, peers := range carried {
			s.probeRelay(ctx, relay, peers, dialled)
		}
		for _, p := range due {
			conns := h.Network().ConnsToPeer(p)
			if newest := newestRelayed(conns); newest != nil && time.Since(newest.Stat().Opened) >= circuitRefresh {
				s.renew(ctx, p, conns)
			}
		}
	}
}

// Probes of a relay that carries session circuits: one every
// relayProbeEvery, given relayProbeRTTs times the relay's round trip
// (as the peerstore measured it) to answer, within relayProbeMin and
// relayProbeMax. A message sent through a relay that died waits for this
// (the session's sender hands it again as soon as the circuit is
// closed), so it is short; a relay too slow for it once only costs its
// circuits' replacement.
const (
	relayProbeEvery = 250 * time.Millisecond
	relayProbeRTTs  = 5
	relayProbeMin   = 250 * time.Millisecond
	relayProbeMax   = 700 * time.Millisecond
)

// relayProbeTimeout is how long relay may take to answer a probe.
func (s *Service) relayProbeTimeout(relay peer.ID) time.Duration {
	return min(max(relayProbeRTTs*s.cfg.Host.Peerstore().LatencyEWMA(relay), relayProbeMin), relayProbeMax)
}

// probeRelay pings a relay that carries circuits to session peers. A relay
// that died without a word (a QUIC connection outlives its killed process
// for its idle timeout, about 30 s, and every stream on it waits that long)
// does not answer: its connection is closed, which ends the circuits at
// once, and each peer that this node had dialled is dialled through its
// other relays. A peer that had dialled this node is left to redial it:
// both ends find the relay dead at about the same time, and the end that
// did not dial would become a dialler (whose redials for hole punching,
// see upgradeRelayed, would replace the new circuit a moment later).
func (s *Service) probeRelay(ctx context.Context, relay peer.ID, peers []peer.ID, dialled map[peer.ID]bool) {
	h := s.cfg.Host
	timeout := s.relayProbeTimeout(relay)
	begin := time.Now()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	// A ping whose answer does not come in time ends with the channel
	// closed (and no result): that is a failure too.
	res, ok := <-ping.Ping(pctx, h, relay)
	cancel()
	if ctx.Err() != nil || (ok && res.Error == nil) {
		return
	}
	log.Infow("a relay carrying session circuits does not answer; its circuits are replaced", "relay", relay, "error", res.Error,
		"timeout_ms", timeout.Milliseconds(), "waited_ms", time.Since(begin).Milliseconds())
	h.Network().ClosePeer(relay)
	through := func(c network.Conn) bool {
		return strings.Contains(c.RemoteMultiaddr().String(), "/p2p/"+relay.String()+"/")
	}
	for _, p := range peers {
		if !dialled[p] {
			log.Debugw("a peer that dialled this node through a dead relay is left to redial", "peer", p)
			continue
		}
		// Until the swarm has let go of the circuits, Connect would take
		// a closing one for a live connection.
		tick := time.NewTicker(5 * time.Millisecond)
		for gone := time.Now().Add(time.Second); time.Now().Before(gone) && slices.ContainsFunc(h.Network().ConnsToPeer(p), through); {
			<-tick.C
		}
		tick.Stop()
		var others []ma.Multiaddr
		for _, a := range h.Peerstore().Addrs(p) {
			if isCircuit(a) && !strings.Contains(a.String(), "/p2p/"+relay.String()+"/") {
				others = append(others, a)
			}
		}
		if len(others) == 0 || h.Network().Connectedness(p) == network.Connected {
			continue
		}
		h.Peerstore().ClearAddrs(p)
		h.Peerstore().AddAddrs(p, others, peerstore.RecentlyConnectedAddrTTL)
		begin := time.Now()
		dctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "replace a dead relay"), 10*time.Second)
		err := h.Connect(dctx, peer.AddrInfo{ID: p})
		cancel()
		log.Infow("peer dialled through its other relays", "peer", p, "ms", time.Since(begin).Milliseconds(), "error", err)
	}
}

// newestRelayed returns the newest of conns when they are all relayed,
// else nil.
func newestRelayed(conns []network.Conn) network.Conn {
	var newest network.Conn
	for _, c := range conns {
		if !c.Stat().Limited && !isCircuit(c.RemoteMultiaddr()) {
			return nil
		}
		if newest == nil || c.Stat().Opened.After(newest.Stat().Opened) {
			newest = c
		}
	}
	return newest
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// renew replaces p's relayed connections with a new one. The swarm gives
// no second connection to a peer while one is open (DialPeer returns the
// open one, and forcing a direct dial leaves the relays out), so renew
// waits for a moment when the old connections carry no stream (drainWait
// at most), closes them and dials through the same relays at once: a
// message sent meanwhile waits for that dial (a few milliseconds) instead
// of being cut by the relay mid-stream.
func (s *Service) renew(ctx context.Context, p peer.ID, old []network.Conn) {
	h := s.cfg.Host
	begin := time.Now()
	var addrs []ma.Multiaddr
	for _, c := range old {
		addrs = append(addrs, c.RemoteMultiaddr())
	}
	// Busy: a stream younger than streamAge is open (a message under
	// way); older ones are long-lived and would never end.
	busy := func() int {
		n := 0
		for _, c := range old {
			for _, st := range c.GetStreams() {
				if time.Since(st.Stat().Opened) < streamAge {
					n++
				}
			}
		}
		return n
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(drainWait)
	for busy() > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	streams := busy()
	for _, c := range old {
		c.Close()
	}
	// Until the swarm has let go of them, Connect would take a closing
	// connection for a live one.
	gone := time.Now().Add(time.Second)
	for time.Now().Before(gone) && slices.ContainsFunc(h.Network().ConnsToPeer(p), func(c network.Conn) bool { return slices.Contains(old, c) }) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	// Only the relays: with the peer's direct addresses in the peerstore,
	// go-libp2p's dial ranker holds relay addresses back 500 ms for them
	// (which a NAT that lets nothing in never answers). Identify on the
	// new connection brings the peer's addresses back.
	h.Peerstore().ClearAddrs(p)
	h.Peerstore().AddAddrs(p, addrs, peerstore.RecentlyConnectedAddrTTL)
	dctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "renew a relayed connection"), 10*time.Second)
	defer cancel()
	closed := time.Now()
	before := h.Network().Connectedness(p)
	err := h.Connect(dctx, peer.AddrInfo{ID: p, Addrs: addrs})
	var now []string
	for _, c := range h.Network().ConnsToPeer(p) {
		now = append(now, fmt.Sprintf("%s %s %v old", c.RemoteMultiaddr(), c.Stat().Direction, time.Since(c.Stat().Opened).Round(time.Millisecond)))
	}
	log.Debugw("relayed connection renewed", "peer", p, "waited_ms", closed.Sub(begin).Milliseconds(), "streams_cut", streams,
		"before", before.String(), "connect_ms", time.Since(closed).Milliseconds(), "error", err, "conns", now)
}

// onlyDialledRelayed reports whether every connection is relayed and one
// of them was dialled by this node.
func onlyDialledRelayed(conns []network.Conn) bool {
	dialled := false
	for _, c := range conns {
		if _, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT); err != nil {
			return false // a direct connection
		}
		dialled = dialled || c.Stat().Direction == network.DirOutbound
	}
	return dialled
}
