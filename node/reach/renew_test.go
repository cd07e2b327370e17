package reach

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

func newTestHost(t *testing.T, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableIdentifyAddressDiscovery()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// A relayed connection to a session peer is replaced by a new one before
// the relay's limits could cut it, and the peer stays reachable.
func TestRenewRelayedConnection(t *testing.T) {
	old := circuitRefresh
	circuitRefresh = 300 * time.Millisecond
	t.Cleanup(func() { circuitRefresh = old })

	relay := newTestHost(t, libp2p.EnableRelayService(), libp2p.ForceReachabilityPublic())
	alice := newTestHost(t, libp2p.ForceReachabilityPrivate())
	bob := newTestHost(t, libp2p.ForceReachabilityPrivate())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ri := peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}
	if err := bob.Connect(ctx, ri); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, bob, ri); err != nil {
		t.Fatal(err)
	}
	circuit := ma.StringCast(relay.Addrs()[0].String() + "/p2p/" + relay.ID().String() + "/p2p-circuit")
	if err := alice.Connect(network.WithAllowLimitedConn(ctx, "test"), peer.AddrInfo{ID: bob.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatal(err)
	}
	first := alice.Network().ConnsToPeer(bob.ID())
	if len(first) != 1 || !first[0].Stat().Limited {
		t.Fatalf("alice's connections to bob: %v", first)
	}

	s, err := New(Config{Host: alice, Refresh: func(p peer.ID) bool { return p == bob.ID() }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Start()

	// Wait (bounded) until the first connection is gone and a newer one
	// took its place.
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conns := alice.Network().ConnsToPeer(bob.ID())
		// (A direct connection may follow on loopback: fine too.)
		if first[0].IsClosed() && len(conns) >= 1 && conns[0].Stat().Opened.After(first[0].Stat().Opened) {
			break
		}
		if time.Now().After(deadline) {
			for _, c := range conns {
				t.Logf("conn %s limited %v opened %v (first %v)", c.RemoteMultiaddr(), c.Stat().Limited, c.Stat().Opened, first[0].Stat().Opened)
			}
			t.Fatalf("no renewal: first closed %v, connections %d", first[0].IsClosed(), len(conns))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	// The renewed connection carries streams.
	bob.SetStreamHandler("/test/1", func(st network.Stream) { st.Write([]byte("x")); st.Close() })
	st, err := alice.NewStream(network.WithAllowLimitedConn(ctx, "test"), bob.ID(), "/test/1")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := st.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v", buf, err)
	}
	st.Close()
}
