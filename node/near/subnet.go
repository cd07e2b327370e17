package near

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// subnets tells whether an address is on one of this machine's subnets. It
// caches the interface list for a few seconds.
type subnets struct {
	mu      sync.Mutex
	prefix  []netip.Prefix // the subnets, masked
	own     []netip.Addr   // this machine's addresses
	fetched time.Time
}

func (s *subnets) refreshLocked() {
	if time.Since(s.fetched) > 5*time.Second {
		s.prefix, s.own = localPrefixes()
		s.fetched = time.Now()
	}
}

func (s *subnets) contains(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	ip = ip.Unmap()
	for _, p := range s.prefix {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// isLocal reports whether ip is loopback or an address of this machine.
func (s *subnets) isLocal(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	return slices.Contains(s.own, ip)
}

// localPrefixes returns the subnets of this machine's interfaces (loopback
// aside) and its addresses.
func localPrefixes() (prefixes []netip.Prefix, own []netip.Addr) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, nil
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, _ := ipn.Mask.Size()
		prefixes = append(prefixes, netip.PrefixFrom(ip.Unmap(), ones).Masked())
		own = append(own, ip.Unmap())
	}
	return prefixes, own
}

// onSubnet reports whether a direct connection to p comes from one of this
// machine's subnets (or from this machine itself).
func (s *subnets) onSubnet(n network.Network, p peer.ID) bool {
	for _, c := range n.ConnsToPeer(p) {
		if c.Stat().Limited {
			continue
		}
		if ip, ok := addrIP(c.RemoteMultiaddr()); ok && (ip.IsLoopback() || s.contains(ip)) {
			return true
		}
	}
	return false
}

func addrIP(a ma.Multiaddr) (netip.Addr, bool) {
	nip, err := manet.ToIP(a)
	if err != nil {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(nip)
	return ip.Unmap(), ok
}
