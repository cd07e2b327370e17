package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/public"
)

// publicState is public mode while it runs: the service, when it began,
// and how it goes (for PublicStatus).
type publicState struct {
	svc   *public.Service
	start time.Time

	mu         sync.Mutex
	announced  time.Time // the last round of announcements
	records    int       // how many provider records it put
	announce   error     // its error
	relayAddrs int       // how many relay addresses AutoRelay holds
}

// Timings of public mode's relay search.
const (
	// publicRelayPoll is how often AutoRelay's peer source looks at the
	// public DHT's routing table while it holds no relay.
	publicRelayPoll = 100 * time.Millisecond
	// autoRelayBackoff is how long AutoRelay leaves a relay alone after a
	// failed reservation (go-libp2p's default, an hour, would leave a node
	// of a small network without relays for that long).
	autoRelayBackoff = 30 * time.Second
)

// autoRelayOptions configure public mode's AutoRelay: fed from the public
// DHT's servers, with one candidate enough to begin, no boot delay and a
// short backoff. Its metrics tracer is made once per node (registering it
// again at the next sign-in would fail).
func (n *Node) autoRelayOptions() []autorelay.Option {
	opts := []autorelay.Option{autorelay.WithPeerSource(n.publicRelays),
		autorelay.WithMinCandidates(1), autorelay.WithBootDelay(0),
		autorelay.WithMinInterval(5 * time.Second), autorelay.WithBackoff(autoRelayBackoff)}
	if n.metrics != nil {
		n.autoRelayTracerOnce.Do(func() {
			n.autoRelayTracer = autorelay.NewMetricsTracer(autorelay.WithRegisterer(n.metrics))
		})
		opts = append(opts, autorelay.WithMetricsTracer(n.autoRelayTracer))
	}
	return opts
}

// publicRelays is AutoRelay's peer source: it waits until public mode
// runs and its routing table holds servers that relay, and sends them.
func (n *Node) publicRelays(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	go func() {
		defer close(out)
		t := time.NewTicker(publicRelayPoll)
		defer t.Stop()
		for {
			if st := n.public.Load(); st != nil {
				if c := st.svc.Candidates(num); len(c) > 0 {
					for _, ai := range c {
						out <- ai // buffered for num
					}
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// hasPublicInterfaceAddr reports whether an interface of this machine has
// a public address. Without one the node sits behind a NAT (or has no
// network), and public mode declares it private at once rather than wait
// about 17 s for AutoNAT v1.
func hasPublicInterfaceAddr() bool {
	addrs, err := manet.InterfaceMultiaddrs()
	if err != nil {
		return true // cannot tell: let AutoNAT decide
	}
	for _, a := range addrs {
		if manet.IsPublicAddr(a) {
			return true
		}
	}
	return false
}

// publicBootstrap is the configured list, or the Amino DHT's own.
func (n *Node) publicBootstrap() ([]peer.AddrInfo, error) {
	if len(n.cfg.PublicBootstrap) == 0 {
		return dht.GetDefaultBootstrapPeerAddrInfos(), nil
	}
	return parseRelays(n.cfg.PublicBootstrap)
}

// publicContacts are the peers public mode announces this node to: every
// contact but the blocked, and each unrevoked device of theirs (each looks
// this node up under its own key).
func (n *Node) publicContacts() []peer.ID {
	list, err := n.store.List()
	if err != nil {
		log.Warnw("public mode: contact list", "error", err)
		return nil
	}
	var out []peer.ID
	for _, c := range list {
		if c.WatcherPermission == contacts.Blocked || c.PeerID == n.host.ID() {
			continue
		}
		out = append(out, c.PeerID)
		for _, d := range c.Devices {
			if d.Revoked.IsZero() {
				out = append(out, d.Device)
			}
		}
	}
	return out
}

// runPublic is public mode for one signed-in period (reach runs it from
// Start until Stop): it starts the service, announces again when the
// contacts or the node's addresses change, logs its progress with the
// milliseconds since it began (joined the DHT, relay addresses,
// announcements, lookups), and closes the service when ctx ends.
func (n *Node) runPublic(ctx context.Context) {
	start := time.Now()
	since := func() int64 { return time.Since(start).Milliseconds() }
	boot, err := n.publicBootstrap()
	if err != nil {
		log.Errorw("public mode: bootstrap peers", "error", err)
		return
	}
	st := &publicState{start: start}
	st.svc, err = public.New(public.Config{Host: n.host, Key: n.id.PrivKey(), Bootstrap: boot, Contacts: n.publicContacts,
		Announced: func(records int, err error) {
			st.mu.Lock()
			st.announced, st.records, st.announce = time.Now(), records, err
			st.mu.Unlock()
			log.Infow("public mode: announced", "records", records, "error", err, "ms", since(), "dht_peers", st.svc.RoutingTableSize())
		}})
	if err != nil {
		log.Errorw("public mode", "error", err)
		return
	}
	svc := st.svc
	// AutoRelay lives as long as public mode: signing out of the Internet
	// scope ends its search and drops its relay addresses.
	ar, err := autorelay.NewAutoRelay(n.host, n.autoRelayOptions()...)
	if err != nil {
		svc.Close()
		log.Errorw("public mode: AutoRelay", "error", err)
		return
	}
	n.public.Store(st)
	ar.Start()
	log.Infow("public mode started", "bootstrap", len(boot))
	var relayAddrs []ma.Multiaddr // AutoRelay's latest
	defer func() {
		n.public.Store(nil)
		ar.Close()
		svc.Close()
		n.dropPublicRelays(relayAddrs)
		log.Infow("public mode stopped")
	}()
	contactsSub, err := n.bus.Subscribe(new(contacts.EvtContactChanged), eventbus.BufSize(16))
	if err != nil {
		log.Errorw("public mode", "error", err)
		return
	}
	defer contactsSub.Close()
	addrSub, err := n.host.EventBus().Subscribe([]any{new(event.EvtLocalAddressesUpdated), new(event.EvtAutoRelayAddrsUpdated)}, eventbus.BufSize(16))
	if err != nil {
		log.Errorw("public mode", "error", err)
		return
	}
	defer addrSub.Close()
	// Join at once: connect to the bootstrap peers rather than wait for
	// the DHT's own refresh.
	for _, b := range boot {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := n.host.Connect(cctx, b); err != nil {
				log.Debugw("public mode: bootstrap peer", "peer", b.ID, "error", err)
			}
		}()
	}
	joined := false
	t := time.NewTicker(publicRelayPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-contactsSub.Out():
			svc.Announce()
		case e := <-addrSub.Out():
			if ev, ok := e.(event.EvtAutoRelayAddrsUpdated); ok {
				relayAddrs = ev.RelayAddrs
				st.mu.Lock()
				st.relayAddrs = len(relayAddrs)
				st.mu.Unlock()
				log.Infow("public mode: relay addresses", "addrs", ev.RelayAddrs, "ms", since())
			}
			svc.Announce()
		case <-t.C:
			if !joined && svc.RoutingTableSize() > 0 {
				joined = true
				log.Infow("public mode: joined the DHT", "peers", svc.RoutingTableSize(), "ms", since())
				t.Stop()
			}
		}
	}
}

// locatePublic looks p up on the public DHT, when public mode runs.
func (n *Node) locatePublic(ctx context.Context, p peer.ID) ([]ma.Multiaddr, error) {
	st := n.public.Load()
	if st == nil {
		return nil, public.ErrNotFound
	}
	begin := time.Now()
	addrs, err := st.svc.Locate(ctx, p)
	log.Infow("public mode: lookup", "peer", p, "addrs", addrs, "error", err, "lookup_ms", time.Since(begin).Milliseconds(),
		"ms", time.Since(st.start).Milliseconds())
	return addrs, err
}

// PublicStatus is how public mode goes.
type PublicStatus struct {
	// Enabled is set when the node is configured for public mode (it runs
	// while signed in to the Internet scope).
	Enabled bool
	// Running is set while it runs; Since is when it began.
	Running bool
	Since   time.Time
	// Servers is how many public DHT servers its routing table holds.
	Servers int
	// RelayAddrs is how many relay addresses AutoRelay holds for it.
	RelayAddrs int
	// Announced is when it last put its provider records (zero: not yet),
	// Records how many, AnnounceError what went wrong with them.
	Announced     time.Time
	Records       int
	AnnounceError error
}

// PublicStatus tells how public mode goes.
func (n *Node) PublicStatus() PublicStatus {
	ps := PublicStatus{Enabled: n.cfg.Public}
	st := n.public.Load()
	if st == nil {
		return ps
	}
	ps.Running, ps.Since, ps.Servers = true, st.start, st.svc.RoutingTableSize()
	st.mu.Lock()
	ps.RelayAddrs, ps.Announced, ps.Records, ps.AnnounceError = st.relayAddrs, st.announced, st.records, st.announce
	st.mu.Unlock()
	return ps
}

// startAminoServer makes a relay node with AminoServer a server of the
// Amino DHT protocol (/ipfs/kad/1.0.0): a stand-in for the public network
// in test networks. It keeps trying its PublicBootstrap peers (the other
// stand-ins, which may start at the same moment) until it holds them.
func (n *Node) startAminoServer() error {
	if !n.cfg.AminoServer {
		return nil
	}
	boot, err := parseRelays(n.cfg.PublicBootstrap)
	if err != nil {
		return err
	}
	n.aminoServer, err = dht.New(n.host, dht.Mode(dht.ModeServer), dht.BootstrapPeers(boot...))
	if err != nil {
		return fmt.Errorf("start the Amino DHT server: %w", err)
	}
	for _, b := range boot {
		n.host.ConnManager().Protect(b.ID, "amino")
	}
	n.wg.Go(func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			missing := 0
			for _, b := range boot {
				if b.ID == n.host.ID() || n.aminoServer.RoutingTable().Find(b.ID) != "" {
					continue
				}
				missing++
				cctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
				if err := n.host.Connect(cctx, b); err != nil {
					log.Debugw("amino server: bootstrap peer", "peer", b.ID, "error", err)
				}
				cancel()
			}
			if missing == 0 {
				log.Infow("amino server: joined every bootstrap peer", "peers", n.aminoServer.RoutingTable().Size())
				return
			}
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return nil
}

// dropPublicRelays ends what public mode's AutoRelay held: the host stops
// advertising its circuit addresses (AutoRelay's own event is stateful and
// would keep them), and the connections to its relays close, which ends
// the reservations (static relays are package reach's business and stay).
func (n *Node) dropPublicRelays(addrs []ma.Multiaddr) {
	if em, err := n.host.EventBus().Emitter(new(event.EvtAutoRelayAddrsUpdated), eventbus.Stateful); err == nil {
		em.Emit(event.EvtAutoRelayAddrsUpdated{})
		em.Close()
	}
	static, _ := parseRelays(n.cfg.StaticRelays)
	seen := map[peer.ID]bool{}
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromP2pAddr(a.Decapsulate(ma.StringCast("/p2p-circuit")))
		if err != nil || seen[ai.ID] || slices.ContainsFunc(static, func(r peer.AddrInfo) bool { return r.ID == ai.ID }) {
			continue
		}
		seen[ai.ID] = true
		n.host.Network().ClosePeer(ai.ID)
	}
}
