package card_test

import (
	"context"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/card"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
)

type node struct {
	h    host.Host
	card *contacts.Card
}

func newNet(t *testing.T, names ...string) []node {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var out []node
	for i, name := range names {
		id, err := contacts.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(id.PrivKey(), ma.StringCast("/ip4/10.0.0."+string(rune('1'+i))+"/tcp/4737"))
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := contacts.NewCertificate(id, contacts.Profile{DisplayName: name}, time.Now())
		c, err := contacts.NewCard(id, []*x509.Certificate{cert}, h.Addrs(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, node{h, c})
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	return out
}

type recorder struct {
	mu    sync.Mutex
	got   []card.Hello
	refus bool
}

func (r *recorder) callbacks(n node) card.Callbacks {
	return card.Callbacks{
		Mine: func(peer.ID) (card.Hello, bool) {
			return card.Hello{Card: n.card, EndpointName: "desk", Presence: endpoint.Presence{Status: endpoint.Busy}}, !r.refus
		},
		Received: func(_ peer.ID, h card.Hello) {
			r.mu.Lock()
			r.got = append(r.got, h)
			r.mu.Unlock()
		},
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestExchange(t *testing.T) {
	ns := newNet(t, "Alice", "Bob")
	alice, bob := ns[0], ns[1]
	var rec recorder
	svc := card.New(bob.h, rec.callbacks(bob))
	defer svc.Close()
	got, err := card.Exchange(ctx(t), alice.h, bob.h.ID(), card.Hello{Card: alice.card, EndpointName: "lap", Near: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Card.PeerID() != bob.h.ID() || got.EndpointName != "desk" || got.Presence.Status != endpoint.Busy {
		t.Fatalf("answer = %+v", got)
	}
	if len(rec.got) != 1 || rec.got[0].Card.PeerID() != alice.h.ID() || !rec.got[0].Near {
		t.Fatalf("Bob received %+v", rec.got)
	}
	// A bye carries no profile.
	if _, err := card.Exchange(ctx(t), alice.h, bob.h.ID(), card.Hello{Bye: true}); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != 2 || !rec.got[1].Bye {
		t.Fatalf("bye not received: %+v", rec.got)
	}
}

func TestImpostorCardRejected(t *testing.T) {
	ns := newNet(t, "Alice", "Bob", "Mallory")
	alice, bob, mallory := ns[0], ns[1], ns[2]
	var rec recorder
	svc := card.New(bob.h, rec.callbacks(bob))
	defer svc.Close()
	// Mallory introduces herself with Alice's card.
	if _, err := card.Exchange(ctx(t), mallory.h, bob.h.ID(), card.Hello{Card: alice.card}); err == nil {
		t.Fatal("Bob answered an impostor")
	}
	if len(rec.got) != 0 {
		t.Fatalf("Bob recorded the impostor: %+v", rec.got)
	}
	// And checked from the other side: an answer with someone else's card.
	if _, err := card.FromPB(mallory.h.ID(), card.Hello{Card: alice.card}.ToPB(), time.Now()); !errors.Is(err, card.ErrWrongPeer) {
		t.Fatalf("FromPB: %v", err)
	}
}

func TestRefusedAndClosed(t *testing.T) {
	ns := newNet(t, "Alice", "Bob")
	alice, bob := ns[0], ns[1]
	rec := recorder{refus: true}
	svc := card.New(bob.h, rec.callbacks(bob))
	if h, err := card.Exchange(ctx(t), alice.h, bob.h.ID(), card.Hello{Card: alice.card}); err != nil || !h.Bye || h.Card != nil {
		t.Fatalf("a node signed out of People Near Me answered %+v, %v; want a bye", h, err)
	}
	svc.Close()
	svc.Close()
	if _, err := card.Exchange(ctx(t), alice.h, bob.h.ID(), card.Hello{Card: alice.card}); err == nil {
		t.Fatal("answered after Close")
	}
}

func TestFromPBChecks(t *testing.T) {
	ns := newNet(t, "Alice")
	alice := ns[0]
	long := make([]rune, 256)
	for i := range long {
		long[i] = 'x'
	}
	for name, m := range map[string]*pb.Hello{
		"no profile":    {},
		"bad card":      {Profile: &pb.Profile{Card: []byte("junk")}},
		"long name":     {Profile: &pb.Profile{Card: alice.card.Marshal(), EndpointName: string(long)}},
		"bad presence":  {Profile: &pb.Profile{Card: alice.card.Marshal(), Presence: &pb.Presence{Status: 99}}},
		"bye with junk": {Bye: true, Profile: &pb.Profile{Card: []byte("junk")}},
	} {
		if _, err := card.FromPB(alice.h.ID(), m, time.Now()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzHello(f *testing.F) {
	id, _ := contacts.GenerateIdentity()
	cert, _ := contacts.NewCertificate(id, contacts.Profile{DisplayName: "A"}, time.Now())
	c, _ := contacts.NewCard(id, []*x509.Certificate{cert}, nil, time.Now())
	seed, _ := proto.Marshal(card.Hello{Card: c, EndpointName: "x", Near: true}.ToPB())
	f.Add(seed)
	f.Add([]byte{0x18, 0x01})
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		var m pb.Hello
		if proto.Unmarshal(data, &m) != nil {
			return
		}
		h, err := card.FromPB(id.ID(), &m, now)
		if err == nil && !h.Bye && h.Card.PeerID() != id.ID() {
			t.Fatal("accepted a card of another peer")
		}
	})
}
