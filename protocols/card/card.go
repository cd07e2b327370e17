// Package card is the card protocol: how two peercollab nodes on one subnet
// introduce themselves.
//
// When a node finds another through mDNS it opens a card stream and sends a
// Hello: its contact card (certificate chain and signed addresses), its
// endpoint name and its presence, with Near set because it found the other on
// its subnet. The other answers with its own Hello. Both sides verify that
// the card belongs to the peer at the other end of the stream (the libp2p
// handshake authenticated that peer ID), so nobody can introduce itself
// under another's name. A node leaving People Near Me sends a Hello with Bye
// set and no profile, so that its neighbours drop it at once; the answer to
// a bye is the receiver's own hello, which the leaver ignores. A node that is
// not in People Near Me answers every hello with a bye.
//
// Each exchange is one short stream: at most MaxMessageSize bytes each way,
// within Timeout, allowed on limited (relayed) connections.
package card

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/internal/wire"
	"github.com/peercollab/peercollab/protocols/pb"
)

var log = logging.Logger("peercollab/card")

// ID is the protocol ID.
const ID protocol.ID = "/peercollab/card/1.0.0"

const (
	// MaxMessageSize caps a Hello: a card of at most 64 KiB plus the name
	// and presence.
	MaxMessageSize = contacts.MaxCardSize + 4<<10
	// Timeout bounds one exchange.
	Timeout = 10 * time.Second
)

// Errors of the protocol.
var (
	// ErrWrongPeer means a card does not belong to the peer that sent it.
	ErrWrongPeer = errors.New("card: card belongs to another peer than the sender")
	// ErrNoProfile means a hello that is not a bye carries no profile.
	ErrNoProfile = errors.New("card: hello without a profile")
)

// Hello is a node's introduction, verified when received.
type Hello struct {
	// Card is the sender's contact card; nil in a bye.
	Card         *contacts.Card
	EndpointName string
	Presence     endpoint.Presence
	// Near is set when the sender found the receiver on its subnet.
	Near bool
	// Bye is set when the sender leaves People Near Me.
	Bye bool
}

// ToPB converts h to its wire form.
func (h Hello) ToPB() *pb.Hello {
	m := &pb.Hello{Near: h.Near, Bye: h.Bye}
	if h.Card != nil {
		m.Profile = &pb.Profile{Card: h.Card.Marshal(), EndpointName: h.EndpointName, Presence: h.Presence.ToPB()}
	}
	return m
}

// FromPB checks a hello received from peer from: the card must verify and
// belong to from, and the fields be within limits.
func FromPB(from peer.ID, m *pb.Hello, now time.Time) (Hello, error) {
	h := Hello{Near: m.GetNear(), Bye: m.GetBye()}
	p := m.GetProfile()
	if p == nil {
		if h.Bye {
			return h, nil
		}
		return h, ErrNoProfile
	}
	c, err := contacts.ParseCard(p.GetCard(), now)
	if err != nil {
		return h, err
	}
	if c.PeerID() != from {
		return h, ErrWrongPeer
	}
	if err := endpoint.CheckName(p.GetEndpointName()); err != nil {
		return h, err
	}
	pres, err := endpoint.PresenceFromPB(p.GetPresence())
	if err != nil {
		return h, err
	}
	h.Card, h.EndpointName, h.Presence = c, p.GetEndpointName(), pres
	return h, nil
}

// Handler connects the service to its node. Both methods run on the
// goroutine of the incoming stream.
type Handler interface {
	// Introduce returns the hello to answer peer to with, or false when
	// this node is not in People Near Me (the answer is then a bye).
	Introduce(to peer.ID) (Hello, bool)
	// Introduced is given every verified hello that arrives.
	Introduced(from peer.ID, h Hello)
}

// Callbacks is a Handler made of two functions.
type Callbacks struct {
	// Mine is Introduce.
	Mine func(to peer.ID) (Hello, bool)
	// Received is Introduced.
	Received func(from peer.ID, h Hello)
}

// Introduce calls c.Mine.
func (c Callbacks) Introduce(to peer.ID) (Hello, bool) { return c.Mine(to) }

// Introduced calls c.Received.
func (c Callbacks) Introduced(from peer.ID, h Hello) { c.Received(from, h) }

// Service answers card exchanges. Close removes its handler.
type Service struct {
	h    host.Host
	once sync.Once
}

// New registers the card protocol's handler on h.
func New(h host.Host, handler Handler) *Service {
	h.SetStreamHandler(ID, wire.Handler(MaxMessageSize, Timeout, func() *pb.Hello { return new(pb.Hello) },
		func(_ context.Context, from peer.ID, m *pb.Hello) (*pb.Hello, error) {
			hello, err := FromPB(from, m, time.Now())
			if err != nil {
				log.Debugw("bad hello", "peer", from, "error", err)
				return nil, err
			}
			mine, ok := handler.Introduce(from)
			handler.Introduced(from, hello)
			if !ok {
				return Hello{Bye: true}.ToPB(), nil
			}
			return mine.ToPB(), nil
		}))
	return &Service{h: h}
}

// Close removes the handler. It is idempotent.
func (s *Service) Close() error {
	s.once.Do(func() { s.h.RemoveStreamHandler(ID) })
	return nil
}

// Exchange sends mine to p and returns p's verified hello.
func Exchange(ctx context.Context, h host.Host, p peer.ID, mine Hello) (Hello, error) {
	var resp pb.Hello
	if err := wire.Exchange(ctx, h, p, ID, mine.ToPB(), &resp, MaxMessageSize, Timeout); err != nil {
		return Hello{}, fmt.Errorf("card exchange: %w", err)
	}
	return FromPB(p, &resp, time.Now())
}
