package node

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// ErrAddrInUse means a listen address's port is taken by another process.
var ErrAddrInUse = errors.New("node: listen address is in use")

func defaultListenAddrs(port int) []ma.Multiaddr {
	p := strconv.Itoa(port)
	return []ma.Multiaddr{
		ma.StringCast("/ip4/0.0.0.0/tcp/" + p),
		ma.StringCast("/ip4/0.0.0.0/udp/" + p + "/quic-v1"),
		ma.StringCast("/ip6/::/tcp/" + p),
		ma.StringCast("/ip6/::/udp/" + p + "/quic-v1"),
	}
}

// sameTransport reports whether the bound address b is what the listen
// address a asked for: the same components, but any port where a has 0.
func sameTransport(a, b ma.Multiaddr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Code() != b[i].Code() {
			return false
		}
		port := a[i].Code() == ma.P_TCP || a[i].Code() == ma.P_UDP
		if a[i].Value() != b[i].Value() && !(port && a[i].Value() == "0") {
			return false
		}
	}
	return true
}

// Ports a node on default settings tries, in order, before a random one:
// DefaultPort, then every portStep above it, portTries in all (4737, 4747,
// ... 4807), so that the daemons of one machine have ports one can guess.
const (
	portStep  = 10
	portTries = 8
)

// listenAddrs turns the configured listen addresses into multiaddrs. Nil
// means the first free port of DefaultPort's series (see portStep), or a
// random one when they are all taken. Explicit addresses are checked for a
// taken port, because go-libp2p binds with SO_REUSEPORT and would share it
// with another process without a word.
func listenAddrs(configured []string) ([]ma.Multiaddr, error) {
	if configured == nil {
		for i := range portTries {
			port := DefaultPort + i*portStep
			addrs := defaultListenAddrs(port)
			if probe(addrs[0]) == nil && probe(addrs[1]) == nil {
				if i > 0 {
					log.Infow("default port taken, listening on the next free one of its series", "default", DefaultPort, "port", port)
				}
				return addrs, nil
			}
		}
		log.Warnw("default ports taken, listening on a random port", "tried", fmt.Sprintf("%d-%d", DefaultPort, DefaultPort+(portTries-1)*portStep))
		return defaultListenAddrs(0), nil
	}
	addrs := make([]ma.Multiaddr, 0, len(configured))
	for _, s := range configured {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("node: bad listen address %q: %w", s, err)
		}
		if err := probe(a); err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// probe binds the TCP or UDP port of a without SO_REUSEPORT and reports
// ErrAddrInUse when another socket holds it. Addresses it cannot probe (port
// 0, other transports, addresses not on this host) pass: libp2p reports
// their errors itself.
func probe(a ma.Multiaddr) error {
	na, err := manet.ToNetAddr(a.Decapsulate(ma.StringCast("/quic-v1")))
	if err != nil {
		return nil
	}
	var closer interface{ Close() error }
	switch na := na.(type) {
	case *net.TCPAddr:
		if na.Port == 0 {
			return nil
		}
		closer, err = net.ListenTCP("tcp", na)
	case *net.UDPAddr:
		if na.Port == 0 {
			return nil
		}
		closer, err = net.ListenUDP("udp", na)
	default:
		return nil
	}
	if errors.Is(err, errAddrInUse) {
		return fmt.Errorf("%w: %s (is another peercollab daemon running?)", ErrAddrInUse, a)
	}
	if err == nil {
		closer.Close()
	}
	return nil
}
