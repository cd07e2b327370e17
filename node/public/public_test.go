package public_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/public"
	"github.com/peercollab/peercollab/protocols/rendezvous"
)

func newHost(t *testing.T) (host.Host, crypto.PrivKey) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(k), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, k
}

// standIn is a few Amino DHT servers on loopback, standing in for the
// public network.
func standIn(t *testing.T, n int) ([]*dht.IpfsDHT, []peer.AddrInfo) {
	t.Helper()
	var servers []*dht.IpfsDHT
	var infos []peer.AddrInfo
	for range n {
		h, _ := newHost(t)
		d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.BootstrapPeers(infos...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		for _, other := range infos {
			if err := h.Connect(context.Background(), other); err != nil {
				t.Fatal(err)
			}
		}
		servers = append(servers, d)
		infos = append(infos, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	}
	for _, d := range servers {
		if err := d.Bootstrap(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return servers, infos
}

type node struct {
	h   host.Host
	svc *public.Service
}

// contactList is a node's contacts, changed by the test while the service
// reads them.
type contactList struct {
	mu  sync.Mutex
	ids []peer.ID
}

func (c *contactList) set(ids ...peer.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = ids
}

func (c *contactList) get() []peer.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids
}

func newNode(t *testing.T, boot []peer.AddrInfo, contacts *contactList) node {
	t.Helper()
	h, k := newHost(t)
	svc, err := public.New(public.Config{Host: h, Key: k, Bootstrap: boot, Contacts: contacts.get})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	for _, b := range boot {
		if err := h.Connect(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	return node{h, svc}
}

// Alice and Bob, contacts, find each other through the stand-in DHT; an
// observer holding every provider record of it cannot tell that they are
// contacts, nor which of Alice's records is for whom.
func TestMeetAndOnlooker(t *testing.T) {
	servers, boot := standIn(t, 4)
	var aliceContacts, bobContacts, carolContacts contactList
	alice := newNode(t, boot, &aliceContacts)
	bob := newNode(t, boot, &bobContacts)
	carol := newNode(t, boot, &carolContacts)
	aliceContacts.set(bob.h.ID(), carol.h.ID())
	bobContacts.set(alice.h.ID())
	carolContacts.set(alice.h.ID())
	for _, n := range []node{alice, bob, carol} {
		n.svc.Announce()
	}

	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		addrs, err := bob.svc.Locate(context.Background(), alice.h.ID())
		if err == nil {
			if len(addrs) == 0 {
				t.Fatal("found Alice without addresses")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Bob did not find Alice: %v", err)
		}
		<-tick.C
	}
	if _, err := carol.svc.Locate(context.Background(), bob.h.ID()); err == nil {
		t.Fatal("Carol found Bob, who is not her contact and does not announce himself to her")
	}

	// The observer: every provider record the servers hold.
	period := rendezvous.PeriodOf(time.Now())
	providers := map[string]map[peer.ID]bool{}
	count := map[peer.ID]int{}
	keys := []struct{ announcer, looker node }{{alice, bob}, {alice, carol}, {bob, alice}, {carol, alice}}
	for _, k := range keys {
		for _, d := range servers {
			secret, _ := rendezvous.Secret(mustKey(t, k.announcer), k.looker.h.Peerstore().PubKey(k.looker.h.ID()))
			key := rendezvous.Key(secret, k.announcer.h.ID(), k.looker.h.ID(), period)
			ps, err := d.ProviderStore().GetProviders(context.Background(), key.Hash())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if providers[key.String()] == nil {
					providers[key.String()] = map[peer.ID]bool{}
				}
				providers[key.String()][p.ID] = true
			}
		}
	}
	for key, ps := range providers {
		if len(ps) != 1 {
			t.Errorf("key %s has %d providers: two contacts would show under one key", key, len(ps))
		}
		for p := range ps {
			count[p]++
		}
	}
	if count[alice.h.ID()] != 2 || count[bob.h.ID()] != 1 || count[carol.h.ID()] != 1 {
		t.Errorf("provider records per node: %v", count)
	}
}

func mustKey(t *testing.T, n node) crypto.PrivKey {
	k := n.h.Peerstore().PrivKey(n.h.ID())
	if k == nil {
		t.Fatal("no private key")
	}
	return k
}
