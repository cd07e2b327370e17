package node

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
)

// reachOptions are the libp2p options for relaying and reachability.
// Every node can hole punch (DCUtR) and be dialled through relays; a relay
// node also runs the relay service, with the configured limits, and counts
// itself publicly reachable (without that, AutoNAT never decides in a small
// network and reservations are refused). Reservations on static relays are
// kept by package reach, not by AutoRelay.
func (n *Node) reachOptions() ([]libp2p.Option, error) {
	hp := []holepunch.Option{holepunch.WithTracer(&n.punches)}
	if n.metrics != nil {
		hp = []holepunch.Option{holepunch.WithMetricsAndEventTracer(holepunch.NewMetricsTracer(holepunch.WithRegisterer(n.metrics)), &n.punches)}
	}
	opts := []libp2p.Option{libp2p.EnableHolePunching(hp...)}
	reach := n.cfg.Reachability
	if n.cfg.RelayService {
		opts = append(opts, libp2p.EnableRelayService(n.relayOptions()...))
		if reach == "" {
			reach = "public"
		}
	}
	if n.cfg.Public && !n.cfg.RelayService && reach == "" && !hasPublicInterfaceAddr() {
		// Behind a NAT: private at once, so that AutoRelay reserves a slot
		// within a moment instead of after AutoNAT v1's ~17 s.
		log.Infow("public mode: no public address on any interface; reachability private")
		reach = "private"
	}
	switch reach {
	case "":
	case "public":
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case "private":
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	default:
		return nil, fmt.Errorf("node: reachability %q is not public, private or empty", reach)
	}
	return opts, nil
}

// relayOptions configure the relay service: the limits of each circuit
// (none with RelayUnlimited), and, with RelayTrustedOnly, an ACL that
// serves only trusted peers (contacts, and peers this node endorsed).
func (n *Node) relayOptions() []relayv2.Option {
	var opts []relayv2.Option
	if n.cfg.RelayUnlimited {
		opts = append(opts, relayv2.WithInfiniteLimits())
	} else {
		rc := relayv2.DefaultResources()
		if n.cfg.RelayLimitDuration > 0 {
			rc.Limit.Duration = n.cfg.RelayLimitDuration
		}
		if n.cfg.RelayLimitData > 0 {
			rc.Limit.Data = n.cfg.RelayLimitData
		}
		opts = append(opts, relayv2.WithResources(rc))
	}
	if n.cfg.RelayTrustedOnly {
		opts = append(opts, relayv2.WithACL(relayACL{n}))
	}
	// Reservations carry the relay's addresses even where they look
	// private (a relay on a company network, or a test network).
	opts = append(opts, relayv2.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }))
	return opts
}

// relayACL lets only trusted peers reserve and connect.
type relayACL struct{ n *Node }

func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.n.relayTrusts(p) }
func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	return a.n.relayTrusts(src) && a.n.relayTrusts(dest)
}

func parseRelays(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("node: bad relay address %q: %w", s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("node: relay address %q must end in /p2p/<peer ID>", s)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// connLimits sets the per-address connection cap and the matching rate of
// new connections (go-libp2p's default rate is 0.2/s with a burst of 16 per
// IPv4 address).
func (n *Node) connLimits() []rcmgr.Option {
	if n.cfg.ConnsPerIP <= 0 || n.cfg.ConnsPerIP == 8 {
		return nil
	}
	per := n.cfg.ConnsPerIP
	burst := 2 * per
	perIP := rate.Limit{RPS: float64(per) / 8 * 0.2, Burst: burst}
	return []rcmgr.Option{
		rcmgr.WithConnRateLimiters(&rate.Limiter{
			NetworkPrefixLimits: []rate.PrefixLimit{
				{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Limit: rate.Limit{}},
				{Prefix: netip.MustParsePrefix("::1/128"), Limit: rate.Limit{}},
			},
			SubnetRateLimiter: rate.SubnetLimiter{
				IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: perIP}},
				IPv6SubnetLimits: []rate.SubnetLimit{{PrefixLength: 56, Limit: perIP}},
				GracePeriod:      time.Minute,
			},
		}),
		rcmgr.WithLimitPerSubnet(
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: per}},
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: per}, {PrefixLength: 48, ConnCount: 8 * per}},
		),
		rcmgr.WithNetworkPrefixLimit(
			[]rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("127.0.0.0/8"), ConnCount: 1 << 30}},
			[]rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("::1/128"), ConnCount: 1 << 30}},
		),
	}
}

// circuitAddrs are this node's addresses through its static relays, which
// it can always build itself: AutoRelay does not reliably put them into the
// host's addresses when the relay's address looks private.
func (n *Node) circuitAddrs() []ma.Multiaddr {
	relays, _ := parseRelays(n.cfg.StaticRelays)
	var out []ma.Multiaddr
	circuit := ma.StringCast("/p2p-circuit")
	for _, r := range relays {
		p2p := ma.StringCast("/p2p/" + r.ID.String())
		for _, a := range r.Addrs {
			out = append(out, a.Encapsulate(p2p).Encapsulate(circuit))
		}
	}
	return out
}

// keepsCircuit tells package reach whose relayed connections to renew
// before a relay's limits cut them: those of the peers this node shares a
// session with (where a cut delays messages by seconds). Others' are left
// to the relay's limits: renewing them would spend a circuit every
// CircuitRefresh for nothing.
func (n *Node) keepsCircuit(p peer.ID) bool {
	return n.started.Load() && n.sessions.SharesSession(p)
}
