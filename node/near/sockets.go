package near

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/net/ipv4"

	"github.com/peercollab/peercollab/protocols/announce"
)

// sockets are the service's two UDP sockets: mc on the Multicast DNS port
// (shared with every other mDNS program of the machine), joined to the group
// on every multicast interface, which sends announcements and answers and
// hears announcements and queries; and uc on a port of its own, which sends
// the queries and hears their answers (unicast to it).
type sockets struct {
	mc, uc *ipv4.PacketConn
	group  *net.UDPAddr

	mu     sync.Mutex // guards joined, and the multicast interface while writing
	joined map[int]bool
}

// errNoInterface means the machine has no interface that can multicast.
var errNoInterface = errors.New("near: no network interface that can multicast is up (on Linux a loopback-only machine needs `ip link set lo multicast on`)")

func openSockets(port int) (*sockets, error) {
	group := &net.UDPAddr{IP: announce.Group.Addr().AsSlice(), Port: port}
	// A multicast address makes Go bind the wildcard address with
	// SO_REUSEADDR, so that every mDNS program of the machine hears the group.
	c, err := net.ListenUDP("udp4", group)
	if err != nil {
		return nil, fmt.Errorf("near: listen on the mDNS port: %w", err)
	}
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("near: listen for answers: %w", err)
	}
	for _, conn := range []*net.UDPConn{c, u} {
		conn.SetReadBuffer(readBuffer)
	}
	s := &sockets{mc: ipv4.NewPacketConn(c), uc: ipv4.NewPacketConn(u), group: group, joined: map[int]bool{}}
	for _, pc := range []*ipv4.PacketConn{s.mc, s.uc} {
		pc.SetMulticastTTL(255) // RFC 6762, §11
		pc.SetMulticastLoopback(true)
	}
	if len(s.join()) == 0 {
		s.close()
		return nil, errNoInterface
	}
	return s, nil
}

// readBuffer is the receive buffer asked for each socket: the answers of a
// few hundred nodes to a query arrive at once.
const readBuffer = 1 << 20

// join joins the group on every multicast interface not joined yet (an
// interface may come up later), and returns the interfaces joined.
func (s *sockets) join() []net.Interface {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Interface
	for _, ifi := range multicastInterfaces() {
		if !s.joined[ifi.Index] {
			if err := s.mc.JoinGroup(&ifi, &net.UDPAddr{IP: s.group.IP}); err != nil {
				log.Debugw("join mDNS group", "interface", ifi.Name, "error", err)
				continue
			}
			s.joined[ifi.Index] = true
		}
		out = append(out, ifi)
	}
	return out
}

// Interfaces names the interfaces People Near Me announces on: up, able to
// multicast, with an IPv4 address.
func Interfaces() []string {
	var out []string
	for _, ifi := range multicastInterfaces() {
		out = append(out, ifi.Name)
	}
	return out
}

// multicastInterfaces are the interfaces that are up, can multicast and
// have an IPv4 address.
func multicastInterfaces() []net.Interface {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	return slices.DeleteFunc(ifaces, func(ifi net.Interface) bool {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			return true
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return true
		}
		return !slices.ContainsFunc(addrs, func(a net.Addr) bool {
			ipn, ok := a.(*net.IPNet)
			return ok && ipn.IP.To4() != nil
		})
	})
}

// multicast sends pkt to the group on every multicast interface, from
// conn.
func (s *sockets) multicast(conn *ipv4.PacketConn, pkt []byte) {
	ifaces := s.join()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ifi := range ifaces {
		var cm *ipv4.ControlMessage
		switch runtime.GOOS {
		case "linux", "darwin", "ios":
			cm = &ipv4.ControlMessage{IfIndex: ifi.Index}
		default: // no per-packet interface (golang.org/x/net/ipv4's note)
			if err := conn.SetMulticastInterface(&ifi); err != nil {
				continue
			}
		}
		if _, err := conn.WriteTo(pkt, cm, s.group); err != nil {
			log.Debugw("multicast", "interface", ifi.Name, "error", err)
		}
	}
}

// unicast sends pkt to to from the mDNS port.
func (s *sockets) unicast(pkt []byte, to netip.AddrPort) error {
	_, err := s.mc.WriteTo(pkt, nil, net.UDPAddrFromAddrPort(to))
	return err
}

func (s *sockets) close() {
	s.mc.Close()
	s.uc.Close()
}

// read hands every packet conn receives to handle, until conn is closed.
func read(conn *ipv4.PacketConn, handle func(pkt []byte, from netip.AddrPort)) {
	buf := make([]byte, announce.MaxPacketSize)
	for {
		n, _, src, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a packet too large, an ICMP error
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		handle(buf[:n], ua.AddrPort())
	}
}
