package node

import (
	"time"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/sessions"
)

// DefaultPort is the TCP and UDP (QUIC) port a node listens on unless told
// otherwise. When it is taken, a node on default settings takes the next
// free one of 4747, 4757, ... 4807, then a port the system picks.
const DefaultPort = 4737

// Config is what a node is built from. Get one from DefaultConfig and change
// what you need; the zero value is not valid.
type Config struct {
	// Home is the data directory: identity key, contact store, local API
	// socket. Required.
	Home string

	// ListenAddrs are the multiaddrs to listen on. Default: nil, meaning TCP
	// and QUIC on DefaultPort on every IPv4 and IPv6 interface, or on the
	// next free port of its series (4747, 4757, ...; a random one when all
	// are taken) when DefaultPort is taken. An explicit address whose port
	// is taken is an error (go-libp2p binds with SO_REUSEPORT and would
	// otherwise share the port silently with another process).
	ListenAddrs []string

	// Profile names the node when New has to create its identity (a home
	// with no identity). Default: empty, meaning New fails with
	// contacts.ErrNoIdentity instead.
	Profile contacts.Profile

	// MaxTrustDepth is how many endorsements may separate a card from a
	// contact for it to count as trusted. Default: contacts.DefaultMaxDepth.
	MaxTrustDepth int

	// ConnsLow and ConnsHigh are the connection manager's watermarks:
	// above ConnsHigh connections it trims down to ConnsLow, sparing
	// contacts, protected peers and connections younger than ConnGrace.
	// Connections to strangers that are idle are closed after ConnGrace
	// whatever their number (see connbudget.go). Default: 32, 128, 1 minute.
	ConnsLow, ConnsHigh int
	ConnGrace           time.Duration

	// StrangerConns is how many inbound connections peers that are neither
	// contacts, nor hosts or members of a session with this node, nor
	// relays may hold; when they
	// hold as many, a newcomer from a less crowded address takes the place
	// of the most crowded address's newest (see connbudget.go). 0 turns
	// the budget off. Default: 64; a relay, whose clients are all
	// strangers: 0.
	StrangerConns int

	// RelayService makes the node a public relay: it runs a circuit relay v2
	// service and declares itself publicly reachable (without that, AutoNAT
	// never decides in a small network and relays refuse reservations).
	// Default: false.
	RelayService bool

	// StaticRelays are multiaddrs (with /p2p/ID) of relays the node keeps a
	// reservation with while signed in to the Internet scope, so that others
	// reach it through them, and whose circuit addresses it puts in its
	// card. They are DHT bootstrap peers too. Default: none.
	StaticRelays []string

	// Bootstrap are multiaddrs (with /p2p/ID) of DHT servers to join the
	// DHT through, besides the relays. Default: none.
	Bootstrap []string

	// Public turns on public mode (see package public): while signed in to
	// the Internet scope the node joins the public Amino DHT as a client,
	// finds relays among its servers (AutoRelay), announces itself to its
	// contacts under rendezvous keys and looks a contact up there when its
	// card's addresses and the own DHT fail. Static relays and the own DHT
	// keep working beside it. Behind a NAT (no public address on any
	// interface) the node counts itself private at once unless
	// Reachability says otherwise. Default: false.
	Public bool

	// PublicBootstrap are multiaddrs (with /p2p/ID) of the public DHT's
	// servers to join through. Default: nil, meaning the Amino DHT's own
	// bootstrap peers (dht.GetDefaultBootstrapPeerAddrInfos).
	PublicBootstrap []string

	// AminoServer (relay nodes) also serves the Amino DHT protocol
	// (/ipfs/kad/1.0.0) as a server: a stand-in for the public network
	// in test networks. Default: false.
	AminoServer bool

	// RelayUnlimited (relay nodes) gives circuits no time or data limit, so
	// that gossipsub, which opens no stream on a limited connection, works
	// through the relay. Pair it with RelayTrustedOnly. Default: false:
	// circuits end after RelayLimitDuration or RelayLimitData bytes each
	// way (go-libp2p's 2 minutes and 128 KiB when 0).
	RelayUnlimited     bool
	RelayLimitDuration time.Duration
	RelayLimitData     int64

	// RelayTrustedOnly (relay nodes) serves only trusted peers: contacts of
	// the relay node, and peers it endorsed. Default: false, anyone.
	RelayTrustedOnly bool

	// Reachability overrides AutoNAT's verdict: "public", "private", or ""
	// to let AutoNAT decide. Default: "" (a relay node is public).
	Reachability string

	// ConnsPerIP caps concurrent connections from one IPv4 address (or IPv6
	// /56). Default: 8, go-libp2p's; a relay that serves several peers
	// behind one NAT needs more (DefaultRelayConfig: 256).
	ConnsPerIP int

	// Scope is where the node signs in at start: "none", "nearme",
	// "internet" or "all". Default: "", meaning where it was signed in when
	// it last ran, or "all" the first time.
	Scope string

	// EndpointName names this endpoint until the user sets one. Default:
	// the host name.
	EndpointName string

	// Heartbeat is how often the node tells its endpoint topic its version
	// (and how long watchers wait before they think a silent host gone:
	// three heartbeats). Default: 10 s.
	Heartbeat time.Duration

	// NearInterval is how often the node announces itself to its subnet at
	// least (People Near Me); on a crowded subnet it announces less often
	// (see package near). Neighbours drop a node not heard of for three
	// intervals and a second, so this bounds how long a vanished node stays
	// listed. Default: 2 s (dropped after 7 s).
	NearInterval time.Duration

	// InvitationsPerMinute and InvitationBurst bound the invitations one
	// peer may send this node; beyond them it answers "rate limited".
	// Default: 20 a minute, bursts of 10.
	InvitationsPerMinute float64
	InvitationBurst      int

	// InvitationLimits bound what others can make the node keep of their
	// invitations: the strangers' and the contacts' budgets, a stranger's
	// share per peer, address and network, how long a stranger's
	// invitation waits. Default: the zero value, meaning the defaults of
	// package invitations (strangers 100 invitations and 2 MiB; contacts
	// 1,000 and 16 MiB; 5 minutes).
	InvitationLimits invitations.Limits

	// SessionHeartbeat is how often a session's host tells its members how
	// far each sender got (so a lost last message is noticed). Default: 2 s.
	SessionHeartbeat time.Duration

	// SessionHistory bounds what the node keeps of each session's messages,
	// durably, for `session messages` (the same before and after a
	// restart) and for the repairs of other members. Default: the zero
	// value, meaning the defaults of package sessions: the last 10,000
	// messages of each session, at most about 64 MiB of them.
	SessionHistory sessions.Retention

	// MetricsAddr, when set, is where the node serves Prometheus metrics
	// (http://MetricsAddr/metrics): go-libp2p's own and the node's (see
	// metrics.go). Keep it on loopback: the metrics tell who is near and
	// how many contacts and sessions the node has. Default: "", off.
	MetricsAddr string

	// EventBuffer is how many events a slow event-stream subscriber may fall
	// behind before it is cut off. Default: 1024.
	EventBuffer int
}

// DefaultConfig returns the default configuration for the data directory home.
func DefaultConfig(home string) Config {
	return Config{
		Home:          home,
		MaxTrustDepth: contacts.DefaultMaxDepth,
		ConnsLow:      32,
		ConnsHigh:     128,
		StrangerConns: 64,
		ConnGrace:     time.Minute,
		EventBuffer:   1024,
		ConnsPerIP:    8,
		Heartbeat:     10 * time.Second,

		SessionHeartbeat: 2 * time.Second,

		InvitationsPerMinute: 20,
		InvitationBurst:      10,

		NearInterval: near.DefaultInterval,
	}
}

// DefaultRelayConfig is DefaultConfig for a public relay node: it relays,
// serves the DHT, allows many connections per address (peers behind one
// NAT), and signs in to the Internet scope only (People Near Me means
// nothing on a server, where the peers behind a NAT all seem to share its
// subnet).
func DefaultRelayConfig(home string) Config {
	cfg := DefaultConfig(home)
	cfg.RelayService = true
	cfg.ConnsPerIP = 256
	cfg.StrangerConns = 0
	cfg.ConnsLow, cfg.ConnsHigh = 400, 1000
	cfg.Scope = "internet"
	return cfg
}
