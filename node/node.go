// Package node wires a peercollab node together: the identity and contact
// store, the libp2p host, and the event stream. It holds no protocol logic;
// each service lives in a package of its own and New hands it what it needs.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/reach"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/node/watch"
)

var log = logging.Logger("peercollab/node")

// Version is the peercollab version, sent in the libp2p user agent.
const Version = "0.1.0-dev"

// Node is a running peercollab node. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	id    *contacts.Identity
	bus   event.Bus
	hub   *events.Hub
	store *contacts.Store
	state *state.DB
	// invState holds the invitations (relaxed durability).
	invState *state.DB
	host     host.Host
	ps       *pubsub.PubSub
	publish  *publish.Service
	near     *near.Service
	watch    *watch.Service
	invites  *invitations.Service
	reach    *reach.Service
	sessions *sessions.Service
	// public is public mode while it runs (nil otherwise).
	public atomic.Pointer[publicState]
	// punches remembers failed hole punches (the host's hole-punching
	// service traces into it; reach reads it).
	punches reach.Punches
	// autoRelayTracer is public mode's AutoRelay metrics tracer, made
	// once (with metrics only).
	autoRelayTracer     autorelay.MetricsTracer
	autoRelayTracerOnce sync.Once
	// aminoServer is the stand-in public DHT server of a relay node with
	// AminoServer (nil otherwise).
	aminoServer *dht.IpfsDHT
	// started is set once every service is there: pubsub's peer filter
	// and the connection gater, which libp2p and gossipsub call from their
	// goroutines as soon as the host runs, answer nothing before.
	started atomic.Bool

	contactSub event.Subscription
	conns      *connWatch
	budget     *connBudget
	// metrics is the node's Prometheus registry, nil without MetricsAddr;
	// metricsAddr where it is served.
	metrics     *prometheus.Registry
	metricsAddr string

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	cardMu   sync.Mutex // guards the cached card
	card     *contacts.Card
	cardKey  string
	cardMade time.Time

	scopeMu sync.Mutex   // held while the scope changes
	scope   atomic.Int32 // a Scope

	closeOnce sync.Once
	closeErr  error
}

// New starts a node for cfg. When the data directory has no identity and
// cfg.Profile names one, New creates it. On error nothing is left running.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	if cfg.Home == "" {
		return nil, errors.New("node: no data directory")
	}
	n := &Node{cfg: cfg, bus: eventbus.NewBus(), hub: events.NewHub()}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()

	n.id, err = contacts.LoadIdentity(cfg.Home)
	if errors.Is(err, contacts.ErrNoIdentity) && cfg.Profile.DisplayName != "" {
		n.id, _, err = contacts.CreateIdentity(cfg.Home)
	}
	if err != nil {
		return nil, err
	}
	// The store first: its lock is what keeps a second daemon off this home.
	n.store, err = contacts.OpenStore(filepath.Join(cfg.Home, contacts.StoreFile), n.bus)
	if err != nil {
		return nil, err
	}
	if err := events.Forward(n.hub, n.bus, contactEvent); err != nil {
		return nil, err
	}
	if _, _, err := contacts.EnsureMe(n.store, n.id, cfg.Profile, time.Now()); err != nil {
		return nil, err
	}
	if n.state, err = state.Open(filepath.Join(cfg.Home, state.File), state.Options{}); err != nil {
		return nil, err
	}
	// Invitations live minutes: their database trades the disk sync of each
	// write for latency (see state.Options.Relaxed).
	if n.invState, err = state.Open(filepath.Join(cfg.Home, state.InvitationsFile), state.Options{Relaxed: true}); err != nil {
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		n.metrics = newRegistry()
	}
	n.host, err = n.newHost()
	if err != nil {
		return nil, err
	}
	n.conns = &connWatch{n: n, state: map[peer.ID]string{}}
	n.host.Network().Notify(n.conns)
	if err := n.startServices(); err != nil {
		return nil, err
	}
	if err := n.startMetrics(); err != nil {
		return nil, err
	}
	if err := n.startScope(ctx); err != nil {
		return nil, err
	}
	log.Infow("node started", "peer", n.id.ID(), "addrs", n.host.Addrs(), "scope", n.Scope())
	return n, nil
}

// startServices starts gossipsub and the node's services.
func (n *Node) startServices() (err error) {
	// Flood publishing sends a node's own messages to every subscriber it
	// knows at once. go-libp2p-pubsub v0.17 leaves it off, and then a
	// publisher sends only to its mesh, which is empty until the next
	// heartbeat grafts the new subscribers: updates published in the first
	// second of a subscription were lost.
	//
	// Gossip (IHAVE) is off: no node passes topic messages on (see
	// protocols/internal/gossip), so gossip could only recover what its
	// publisher sent directly, and it tells every subscriber, members or
	// not, how many messages each peer published (message IDs carry the
	// publisher and a sequence number). Sessions repair gaps and watchers
	// refetch snapshots on their own.
	params := pubsub.DefaultGossipSubParams()
	params.Dlazy, params.GossipFactor = 0, 0
	if n.ps, err = pubsub.NewGossipSub(n.ctx, n.host, pubsub.WithFloodPublish(true),
		pubsub.WithGossipSubParams(params), pubsub.WithPeerFilter(n.pubsubPeerFilter),
		// pubsub logs through slog; this hands its lines to go-log, as
		// subsystem "pubsub" (GOLOG_LOG_LEVEL=pubsub=debug).
		pubsub.WithLogger(slog.New(logging.SlogHandler()).With(slog.String("logger", "pubsub")))); err != nil {
		return fmt.Errorf("start gossipsub: %w", err)
	}
	endpointName := n.cfg.EndpointName
	if endpointName == "" {
		endpointName, _ = os.Hostname()
	}
	n.publish, err = publish.New(publish.Config{Host: n.host, PubSub: n.ps, State: n.state, Hub: n.hub,
		Access: n.access, DefaultName: endpointName, Heartbeat: n.cfg.Heartbeat})
	if err != nil {
		return err
	}
	relays, err := parseRelays(n.cfg.StaticRelays)
	if err != nil {
		return err
	}
	boot, err := parseRelays(n.cfg.Bootstrap)
	if err != nil {
		return err
	}
	rc := reach.Config{Host: n.host, Relays: relays, Bootstrap: boot, Server: n.cfg.RelayService,
		Record: n.addressRecord, Addrs: n.Addrs, Refresh: n.keepsCircuit, Punches: &n.punches}
	if n.cfg.Public {
		rc.While = n.runPublic
	}
	n.reach, err = reach.New(rc)
	if err != nil {
		return err
	}
	if err := n.startAminoServer(); err != nil {
		return err
	}
	n.near, err = near.New(near.Config{Host: n.host, Hub: n.hub, Key: n.id.PrivKey(), Profile: n.nearProfile,
		Mine: n.hello, Interval: n.cfg.NearInterval})
	if err != nil {
		return err
	}
	n.watch = watch.New(watch.Config{Host: n.host, PubSub: n.ps, Hub: n.hub, Connect: n.connectPeer, Heartbeat: n.cfg.Heartbeat})
	n.invites, err = invitations.New(invitations.Config{Host: n.host, State: n.invState, Settings: n.state, Hub: n.hub,
		Home: n.cfg.Home, Node: invitationNode{n},
		RateLimit: rate.Limit(n.cfg.InvitationsPerMinute / 60), RateBurst: n.cfg.InvitationBurst, Limits: n.cfg.InvitationLimits})
	if err != nil {
		return err
	}
	n.sessions, err = sessions.New(sessions.Config{Host: n.host, PubSub: n.ps, State: n.invState, Hub: n.hub, Invitations: n.invites,
		Dir: filepath.Join(n.cfg.Home, sessionsDir), Sign: n.id.PrivKey().Sign, Connect: n.connectPeer, App: n.sessionApp,
		Heartbeat: n.cfg.SessionHeartbeat, Retention: n.cfg.SessionHistory})
	if err != nil {
		return err
	}
	n.started.Store(true)
	n.contactSub, err = n.bus.Subscribe(new(contacts.EvtContactChanged), eventbus.BufSize(64), eventbus.Name("peercollab/node"))
	if err != nil {
		return err
	}
	n.wg.Go(n.followContacts)
	list, err := n.store.List()
	if err != nil {
		return err
	}
	for _, c := range list {
		n.host.ConnManager().Protect(c.PeerID, tagContact)
		if c.Watch {
			n.watch.Watch(c.PeerID)
		}
	}
	for _, r := range append(relays, boot...) {
		n.host.ConnManager().Protect(r.ID, "relay")
	}
	n.wg.Go(n.trimLoop)
	return nil
}

// sessionsDir is the directory in the data directory that holds the
// sessions' histories.
const sessionsDir = "sessions"

// tagContact protects the connections of contacts from the connection
// manager's trimming.
const tagContact = "contact"

// startScope signs in where the configuration or the last run says.
func (n *Node) startScope(ctx context.Context) error {
	scope := ScopeAll
	if err := n.setting(keyScope, &scope); err != nil {
		return err
	}
	if scope&^ScopeAll != 0 {
		log.Errorw("stored scope out of range ignored; signing in everywhere", "scope", int(scope))
		scope = ScopeAll
	}
	persist := false
	if n.cfg.Scope != "" {
		s, err := ParseScope(n.cfg.Scope)
		if err != nil {
			return err
		}
		scope, persist = s, true
	}
	n.scopeMu.Lock()
	defer n.scopeMu.Unlock()
	return n.setScopeLocked(ctx, scope, persist)
}

func (n *Node) newHost() (host.Host, error) {
	unlock := listenLock()
	defer unlock()
	addrs, err := listenAddrs(n.cfg.ListenAddrs)
	if err != nil {
		return nil, err
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	reach, err := n.reachOptions()
	if err != nil {
		return nil, err
	}
	rmOpts := n.connLimits()
	metrics := []libp2p.Option{libp2p.DisableMetrics()}
	if n.metrics != nil {
		// go-libp2p's metrics into the node's registry; the resource
		// manager reports its own through a trace reporter.
		str, err := rcmgr.NewStatsTraceReporter()
		if err != nil {
			return nil, fmt.Errorf("resource manager metrics: %w", err)
		}
		rmOpts = append(rmOpts, rcmgr.WithTraceReporter(str))
		metrics = []libp2p.Option{libp2p.PrometheusRegisterer(n.metrics)}
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(connScopes.Build(limits.AutoScale())), rmOpts...)
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(n.cfg.ConnsLow, n.cfg.ConnsHigh, connmgr.WithGracePeriod(n.cfg.ConnGrace))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	n.budget = &connBudget{max: n.cfg.StrangerConns, store: n.store, sessionPeer: func(p peer.ID) bool {
		return n.started.Load() && n.sessions.SharesSession(p)
	}}
	h, err := libp2p.New(append(append(reach,
		libp2p.Identity(n.id.PrivKey()),
		libp2p.ListenAddrs(addrs...),
		libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(n.budget),
		libp2p.UserAgent("peercollab/"+Version),
		libp2p.AddrsFactory(n.withCircuits),
	), metrics...)...)
	if err != nil {
		rm.Close()
		cm.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	n.budget.h.Store(&h)
	bound := h.Network().ListenAddresses()
	for _, a := range addrs {
		if !slices.ContainsFunc(bound, func(b ma.Multiaddr) bool { return sameTransport(a, b) }) {
			log.Warnw("cannot listen on an address", "addr", a)
		}
	}
	return h, nil
}

// setting reads the stored setting key into v. A damaged one counts as
// unset and leaves v as it was (it is logged): one bad value never keeps the
// node from starting.
func (n *Node) setting(key string, v any) error {
	_, err := n.state.Get(bucketSettings, key, v)
	if errors.Is(err, state.ErrCorrupt) {
		log.Errorw("damaged setting ignored; using the default", "setting", key, "error", err)
		return nil
	}
	return err
}

// connScopes raise go-libp2p's connection limits where a flood from many
// addresses would otherwise take the room of contacts: the transient scope
// (handshakes under way, before the peer is known: 79 inbound by default
// here) holds many short-lived strangers' handshakes, so that a contact's
// handshake still finds room; the system scope holds them besides the
// connections kept. Who keeps a connection is the connection budget's
// business (connbudget.go); per-address caps and rates still apply.
var connScopes = rcmgr.PartialLimitConfig{
	System:    rcmgr.ResourceLimits{Conns: 1024, ConnsInbound: 512},
	Transient: rcmgr.ResourceLimits{Conns: 512, ConnsInbound: 256},
}

// Close stops the node and waits for everything it started. It is
// idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		// Leave gracefully: bye to the people near, Offline to watchers.
		if n.near != nil && n.publish != nil {
			// A bye not through in half a second is not worth waiting
			// for: the neighbours' probes drop this node soon anyway.
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			n.near.Stop(ctx)
			n.publish.SetSignedIn(false)
			cancel()
		}
		if n.sessions != nil {
			errs = append(errs, n.sessions.Close())
		}
		if n.invites != nil {
			errs = append(errs, n.invites.Close())
		}
		if n.watch != nil {
			errs = append(errs, n.watch.Close())
		}
		if n.near != nil {
			errs = append(errs, n.near.Close())
		}
		if n.publish != nil {
			errs = append(errs, n.publish.Close())
		}
		if n.reach != nil {
			errs = append(errs, n.reach.Close())
		}
		if n.aminoServer != nil {
			errs = append(errs, n.aminoServer.Close())
		}
		if n.contactSub != nil {
			n.contactSub.Close()
		}
		n.cancel()
		n.wg.Wait()
		if n.host != nil {
			if n.conns != nil {
				n.host.Network().StopNotify(n.conns)
			}
			errs = append(errs, n.host.Close())
		}
		if n.state != nil {
			errs = append(errs, n.state.Close())
		}
		if n.invState != nil {
			errs = append(errs, n.invState.Close())
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
		}
		errs = append(errs, n.hub.Close())
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Identity is the node's identity.
func (n *Node) Identity() *contacts.Identity { return n.id }

// Contacts is the node's contact store.
func (n *Node) Contacts() *contacts.Store { return n.store }

// Events subscribes to the node's event stream with the configured buffer.
func (n *Node) Events() *events.Sub { return n.hub.Subscribe(n.cfg.EventBuffer) }

// ContactEvent is the payload of "contact.changed" and "me.changed" events.
type ContactEvent struct {
	Change  contacts.ChangeType `json:"change"`
	Contact contacts.Contact    `json:"contact"`
}

func contactEvent(e contacts.EvtContactChanged) (string, any) {
	typ := "contact.changed"
	if e.Me {
		typ = "me.changed"
	}
	return typ, ContactEvent{Change: e.Change, Contact: e.Contact}
}
