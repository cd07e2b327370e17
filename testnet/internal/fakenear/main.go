// Command fakenear plays a crowd of fake neighbours, for robustness tests in
// test networks: keys cost nothing, so an attacker on a subnet has
// thousands. It makes -keys fresh keys and gives them out in turn to the
// local addresses of -addrs; each key announces itself as a person near
// every -interval (signed Multicast DNS announcements, as peercollab nodes
// make them, sent from its address) and, with -victim, connects to the
// victim from its address and connects again whenever the connection ends.
// It prints "ready" once every key has announced itself and tried its
// first connection, and runs until it is killed.
//
//	fakenear -addrs 10.1.0.100-149 -keys 300 -victim /ip4/10.1.0.2/tcp/4737/p2p/12D3...
//
// It is test equipment, built by the tests that use it; it never leaves
// the test network it runs in.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/net/ipv4"

	"github.com/peercollab/peercollab/protocols/announce"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

func main() {
	addrs := flag.String("addrs", "", "local IPv4 addresses to use in turn: a list (a,b,c) or a range of the last byte (10.1.0.100-149)")
	keys := flag.Int("keys", 100, "how many fake neighbours")
	victim := flag.String("victim", "", "multiaddr (with /p2p/ID) of a node to connect to from every key")
	iface := flag.String("iface", "eth0", "the interface to multicast on")
	interval := flag.Duration("interval", time.Second, "how often each key announces itself")
	flag.Parse()
	if err := run(*addrs, *keys, *victim, *iface, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "fakenear:", err)
		os.Exit(1)
	}
}

func run(addrList string, keys int, victim, ifName string, interval time.Duration) error {
	addrs, err := parseAddrs(addrList)
	if err != nil {
		return err
	}
	ifi, err := net.InterfaceByName(ifName)
	if err != nil {
		return err
	}
	var target *peer.AddrInfo
	if victim != "" {
		if target, err = peer.AddrInfoFromString(victim); err != nil {
			return fmt.Errorf("-victim: %w", err)
		}
	}
	// One socket per address, bound to it, so that its announcements come
	// from it.
	socks := map[netip.Addr]*ipv4.PacketConn{}
	for _, a := range addrs {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: a.AsSlice()})
		if err != nil {
			return err
		}
		pc := ipv4.NewPacketConn(c)
		if err := pc.SetMulticastInterface(ifi); err != nil {
			return err
		}
		socks[a] = pc
	}
	group := net.UDPAddrFromAddrPort(announce.Group)
	ctx := context.Background()
	var ready sync.WaitGroup
	for i := range keys {
		a := addrs[i%len(addrs)]
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return err
		}
		ready.Add(1)
		go func() {
			f := fake{i: i, key: key, addr: a, sock: socks[a], group: group, interval: interval}
			f.announce()
			if target != nil {
				f.connect(ctx, *target, ready.Done)
			} else {
				ready.Done()
			}
			select {}
		}()
	}
	ready.Wait()
	fmt.Println("ready")
	select {}
}

// fake is one fake neighbour.
type fake struct {
	i        int
	key      crypto.PrivKey
	addr     netip.Addr
	sock     *ipv4.PacketConn
	group    *net.UDPAddr
	interval time.Duration
}

// announce sends the first announcement now and the next ones every
// interval, each signed anew with a greater sequence number (a repeat
// would cost the victim nothing).
func (f fake) announce() {
	id, _ := peer.IDFromPrivateKey(f.key)
	send := func() {
		r := announce.Record{Seq: uint64(time.Now().UnixNano()), DisplayName: fmt.Sprintf("Fake %d", f.i),
			EndpointName: "fake", Presence: endpoint.Presence{Status: endpoint.Online}, Refresh: f.interval,
			Addrs: []ma.Multiaddr{ma.StringCast("/ip4/" + f.addr.String() + "/tcp/1")}}
		rand.Read(r.Fingerprint[:])
		env, err := announce.Seal(r, f.key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "seal:", err)
			return
		}
		pkt, err := announce.Announcement(announce.Instance(id), env, announce.LostAfter(f.interval))
		if err != nil {
			fmt.Fprintln(os.Stderr, "announcement:", err)
			return
		}
		f.sock.WriteTo(pkt, nil, f.group)
	}
	send()
	go func() {
		for range time.Tick(f.interval) {
			send()
		}
	}()
}

// connect keeps a connection from the fake's address to the victim (its
// dials are bound to that address). done is called after the first
// attempt.
func (f fake) connect(ctx context.Context, victim peer.AddrInfo, done func()) {
	from := &net.Dialer{LocalAddr: &net.TCPAddr{IP: f.addr.AsSlice()}}
	dialer := tcp.WithDialerForAddr(func(ma.Multiaddr) (tcp.ContextDialer, error) { return from, nil })
	h, err := libp2p.New(libp2p.Identity(f.key), libp2p.NoTransports, libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport(), dialer),
		libp2p.NoListenAddrs, libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		done()
		return
	}
	first := true
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := h.Connect(cctx, victim)
		cancel()
		if first {
			first = false
			done()
		}
		if err == nil {
			for h.Network().Connectedness(victim.ID) == network.Connected {
				time.Sleep(500 * time.Millisecond)
			}
		}
		time.Sleep(2 * time.Second)
	}
}

// parseAddrs reads "a,b,c" or "10.1.0.100-149".
func parseAddrs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if base, last, ok := strings.Cut(part, "-"); ok {
			first, err := netip.ParseAddr(base)
			if err != nil || !first.Is4() {
				return nil, fmt.Errorf("bad range %q", part)
			}
			end, err := strconv.Atoi(last)
			b := first.As4()
			if err != nil || end < int(b[3]) || end > 254 {
				return nil, fmt.Errorf("bad range %q", part)
			}
			for i := int(b[3]); i <= end; i++ {
				b[3] = byte(i)
				out = append(out, netip.AddrFrom4(b))
			}
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("no -addrs")
	}
	return out, nil
}
