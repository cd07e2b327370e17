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

// listenAddrs turns the configured listen addresses into multiaddrs. Nil
// means the default port, or a random one when that is taken. Explicit
// addresses are checked for a taken port, because go-libp2p binds with
// SO_REUSEPORT and would share it with another process without a word.
func listenAddrs(configured []string) ([]ma.Multiaddr, error) {
	if configured == nil {
		addrs := defaultListenAddrs(DefaultPort)
		for _, a := range addrs[:2] {
			if err := probe(a); err != nil {
				log.Warnw("default port taken, listening on a random port", "port", DefaultPort, "error", err)
				return defaultListenAddrs(0), nil
			}
		}
		return addrs, nil
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
