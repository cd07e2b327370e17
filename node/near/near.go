// Package near is People Near Me: the peercollab nodes on this node's
// subnets, found with mDNS under our own service name and introduced to each
// other over the card protocol (protocols/card).
//
// An entry appears when mDNS finds a node and the card exchange succeeds, or
// when a node on one of our subnets introduces itself as near. It is updated
// when the node announces a new name or presence, and it disappears:
//   - at once when the node signs out of People Near Me (it says bye);
//   - within moments when its process ends: over TCP its connections close
//     and a redial fails at once; over QUIC, which does not hear that a UDP
//     port closed, the next liveness probe times out (ProbeInterval plus
//     2 s) and its TCP port refuses a connection (see liveness.go);
//   - within LostAfter plus a probe (12 s by default) when it vanishes
//     silently (cable cut, machine off), because liveness pings fail.
//
// A node lost without a bye is probed a while longer (ForgetAfter), so that
// it comes back by itself when it reappears, even though mDNS reports each
// node only once an hour.
package near

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/protocols/card"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

var log = logging.Logger("peercollab/near")

// ServiceName is the mDNS service peercollab nodes announce, so that only
// they answer each other.
const ServiceName = "_peercollab._udp"

// Default timings.
const (
	DefaultProbeInterval = 2 * time.Second
	DefaultLostAfter     = 10 * time.Second
	DefaultForgetAfter   = 2 * time.Minute
	probeTimeout         = 2 * time.Second
)

// EvtChanged is the event type of a change of the list.
const EvtChanged = "near.changed"

// Errors of the service.
var (
	ErrNotSignedIn = errors.New("near: not signed in to People Near Me; run `peercollab signin nearme`")
	ErrNotFound    = errors.New("near: nobody near matches")
	ErrAmbiguous   = errors.New("near: more than one person near matches")
)

// Person is someone near (Windows' PEER_PEOPLE_NEAR_ME, with presence).
type Person struct {
	Peer         peer.ID              `json:"peer_id"`
	DisplayName  string               `json:"display_name"`
	Email        string               `json:"email,omitempty"`
	EndpointName string               `json:"endpoint_name"`
	Presence     endpoint.Presence    `json:"presence"`
	Fingerprint  contacts.Fingerprint `json:"fingerprint"`
	Addrs        []ma.Multiaddr       `json:"addrs,omitempty"`
	// Card is the person's contact card (PEM), for adding them as a contact.
	Card     []byte    `json:"-"`
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
}

// ChangeEvent is the payload of EvtChanged (Windows'
// PEOPLE_NEAR_ME_CHANGED).
type ChangeEvent struct {
	Change contacts.ChangeType `json:"change"`
	Person Person              `json:"person"`
}

// Config is what the service needs from its node.
type Config struct {
	Host host.Host
	Hub  *events.Hub
	// Mine returns this node's introduction to peer to (card, endpoint
	// name, and presence if to may see it). It is called from several
	// goroutines.
	Mine func(to peer.ID) (card.Hello, error)
	// ServiceName, ProbeInterval, LostAfter, ForgetAfter: 0 means the
	// defaults above.
	ServiceName   string
	ProbeInterval time.Duration
	LostAfter     time.Duration
	ForgetAfter   time.Duration
}

// Service keeps the list of people near. Its methods are safe for
// concurrent use.
type Service struct {
	cfg     Config
	cards   *card.Service
	subnets subnets
	connSub event.Subscription
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.Mutex
	active bool
	// activeCtx ends when the node signs out of People Near Me; the
	// introductions of a signed-in period run under it.
	activeCtx    context.Context
	activeCancel context.CancelFunc
	mdns         interface{ Close() error }
	people       map[peer.ID]*Person
	lost         map[peer.ID]time.Time // lost without a bye: when
	inflight     map[peer.ID]bool
	closed       bool

	// introducing counts introductions under way, which Stop waits for so
	// that no hello follows its byes.
	introducing sync.WaitGroup
}

// New starts the service, signed out: it answers card exchanges only after
// Start.
func New(cfg Config) (*Service, error) {
	if cfg.ServiceName == "" {
		cfg.ServiceName = ServiceName
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.LostAfter <= 0 {
		cfg.LostAfter = DefaultLostAfter
	}
	if cfg.ForgetAfter <= 0 {
		cfg.ForgetAfter = DefaultForgetAfter
	}
	sub, err := cfg.Host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, connSub: sub, ctx: ctx, cancel: cancel,
		people: map[peer.ID]*Person{}, lost: map[peer.ID]time.Time{}, inflight: map[peer.ID]bool{}}
	s.cards = card.New(cfg.Host, card.Callbacks{Mine: s.answer, Received: s.received})
	s.wg.Go(s.probeLoop)
	s.wg.Go(s.watchConns)
	return s, nil
}

// Close stops mDNS and every goroutine. It does not say bye; call Stop
// first for that. It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	m := s.mdns
	s.mdns, s.active = nil, false
	s.mu.Unlock()
	if m != nil {
		m.Close()
	}
	s.cards.Close()
	s.cancel()
	s.connSub.Close()
	s.wg.Wait()
	return nil
}

// Start signs in to People Near Me: announce and browse with mDNS.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active || s.closed {
		return nil
	}
	m := mdns.NewMdnsService(s.cfg.Host, s.cfg.ServiceName, notifee{s})
	if err := m.Start(); err != nil {
		m.Close()
		return fmt.Errorf("near: start mDNS: %w", err)
	}
	s.mdns, s.active = m, true
	s.activeCtx, s.activeCancel = context.WithCancel(s.ctx)
	return nil
}

// Stop signs out of People Near Me: it stops mDNS, waits for introductions
// under way, says bye to everyone near and to every node on the subnet it is
// connected to (one may have listed this node a moment ago), and empties the
// list.
func (s *Service) Stop(ctx context.Context) {
	s.mu.Lock()
	if !s.active {
		s.mu.Unlock()
		return
	}
	m := s.mdns
	s.mdns, s.active = nil, false
	people := s.sortedLocked()
	for _, p := range people {
		delete(s.people, p.Peer)
	}
	clear(s.lost)
	cancelIntroductions := s.activeCancel
	s.mu.Unlock()
	m.Close()
	cancelIntroductions()
	s.introducing.Wait()
	bye := map[peer.ID]bool{}
	for _, p := range people {
		bye[p.Peer] = true
		s.cfg.Hub.Publish(EvtChanged, ChangeEvent{contacts.Deleted, p})
	}
	for _, p := range s.cfg.Host.Network().Peers() {
		if ok, _ := s.cfg.Host.Peerstore().SupportsProtocols(p, card.ID); len(ok) > 0 && s.OnSubnet(p) {
			bye[p] = true
		}
	}
	var wg sync.WaitGroup
	for p := range bye {
		wg.Go(func() {
			if _, err := card.Exchange(ctx, s.cfg.Host, p, card.Hello{Bye: true}); err != nil {
				log.Debugw("bye", "peer", p, "error", err)
			}
		})
	}
	wg.Wait()
}

// Active reports whether the node is signed in to People Near Me.
func (s *Service) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// List returns the people near, by display name.
func (s *Service) List() ([]Person, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return nil, ErrNotSignedIn
	}
	return s.sortedLocked(), nil
}

func (s *Service) sortedLocked() []Person {
	out := make([]Person, 0, len(s.people))
	for _, p := range s.people {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Person) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName)), cmp.Compare(a.Peer, b.Peer))
	})
	return out
}

// Get returns the person p, if near.
func (s *Service) Get(p peer.ID) (Person, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if person, ok := s.people[p]; ok {
		return *person, true
	}
	return Person{}, false
}

// Resolve finds the person near a user means: a peer ID, a display name
// (case-insensitive), or a prefix of either that only one person has.
func (s *Service) Resolve(query string) (Person, error) {
	people, err := s.List()
	if err != nil {
		return Person{}, err
	}
	q := strings.ToLower(query)
	var exact, prefix []Person
	for _, p := range people {
		id, name := p.Peer.String(), strings.ToLower(p.DisplayName)
		switch {
		case id == query || name == q:
			exact = append(exact, p)
		case query != "" && (strings.HasPrefix(id, query) || strings.HasPrefix(name, q)):
			prefix = append(prefix, p)
		}
	}
	for _, set := range [][]Person{exact, prefix} {
		if len(set) == 1 {
			return set[0], nil
		}
		if len(set) > 1 {
			return Person{}, fmt.Errorf("%w: %q", ErrAmbiguous, query)
		}
	}
	return Person{}, fmt.Errorf("%w: %q", ErrNotFound, query)
}

// OnSubnet reports whether p is connected directly from one of this
// machine's subnets.
func (s *Service) OnSubnet(p peer.ID) bool { return s.subnets.onSubnet(s.cfg.Host.Network(), p) }

// Announce tells everyone near that this node's profile changed (name or
// presence), so that their lists update.
func (s *Service) Announce() {
	s.mu.Lock()
	if !s.active || s.closed {
		s.mu.Unlock()
		return
	}
	people := s.sortedLocked()
	s.mu.Unlock()
	for _, p := range people {
		s.goExchange(p.Peer, nil)
	}
}

// answer is the card protocol's Mine callback.
func (s *Service) answer(to peer.ID) (card.Hello, bool) {
	if !s.Active() {
		return card.Hello{}, false
	}
	h, err := s.cfg.Mine(to)
	if err != nil {
		log.Warnw("own introduction", "error", err)
		return card.Hello{}, false
	}
	h.Near = s.OnSubnet(to)
	return h, true
}

// received is the card protocol's Received callback.
func (s *Service) received(from peer.ID, h card.Hello) {
	if h.Bye {
		s.remove(from, false)
		return
	}
	if !s.Active() {
		return
	}
	if !h.Near || !s.OnSubnet(from) {
		s.mu.Lock()
		_, known := s.people[from]
		s.mu.Unlock()
		if !known {
			return // an introduction from afar does not make a neighbour
		}
	}
	s.upsert(from, h)
}

// upsert adds or updates a person from their hello and says so.
func (s *Service) upsert(from peer.ID, h card.Hello) {
	prof := h.Card.Profile()
	now := time.Now()
	s.mu.Lock()
	if !s.active {
		s.mu.Unlock()
		return
	}
	old, known := s.people[from]
	p := &Person{Peer: from, DisplayName: prof.DisplayName, Email: prof.Email, EndpointName: h.EndpointName,
		Presence: h.Presence, Fingerprint: h.Card.Fingerprint(), Addrs: h.Card.Addrs(), Card: h.Card.Marshal(),
		Since: now, LastSeen: now}
	change := contacts.Added
	if known {
		p.Since = old.Since
		change = contacts.Updated
		if samePerson(old, p) {
			old.LastSeen = now
			s.mu.Unlock()
			return
		}
	}
	s.people[from] = p
	delete(s.lost, from)
	// A copy, taken under the lock: the next hello may touch p.LastSeen.
	ev := ChangeEvent{change, *p}
	s.mu.Unlock()
	if len(ev.Person.Addrs) > 0 {
		s.cfg.Host.Peerstore().AddAddrs(from, ev.Person.Addrs, peerstore.RecentlyConnectedAddrTTL)
	}
	log.Debugw("person near", "peer", from, "change", change)
	s.cfg.Hub.Publish(EvtChanged, ev)
}

func samePerson(a, b *Person) bool {
	return a.DisplayName == b.DisplayName && a.Email == b.Email && a.EndpointName == b.EndpointName &&
		a.Presence == b.Presence && a.Fingerprint == b.Fingerprint
}

// remove drops a person; lost (as opposed to said bye) keeps probing them.
func (s *Service) remove(p peer.ID, lost bool) {
	s.mu.Lock()
	person, ok := s.people[p]
	delete(s.people, p)
	if lost && ok {
		s.lost[p] = time.Now()
	} else {
		delete(s.lost, p)
	}
	s.mu.Unlock()
	if ok {
		log.Debugw("person gone", "peer", p, "lost", lost)
		s.cfg.Hub.Publish(EvtChanged, ChangeEvent{contacts.Deleted, *person})
	}
}

// goExchange introduces this node to p in the background (once at a time
// per peer), dialling addrs if given, and records p's answer.
//
// Two nodes usually find each other through mDNS at the same moment. Were
// both to dial at once, go-libp2p's SO_REUSEPORT dials from the listening
// port would meet as one TCP simultaneous open, which the security
// handshake cannot handle, and both introductions would fail. So after an
// mDNS discovery the node with the greater peer ID lets the other go first
// (dialAfter), and a failed introduction is tried once more after a random
// pause, with the dial backoff cleared.
func (s *Service) goExchange(p peer.ID, addrs []ma.Multiaddr) {
	s.goIntroduce(p, func(ctx context.Context) {
		if s.cfg.Host.ID() > p && !sleep(ctx, dialAfter) {
			return
		}
		err := s.exchange(ctx, p, addrs)
		if err != nil && !errors.Is(err, errSignedOut) && sleep(ctx, dialAfter+time.Duration(mrand.Int64N(int64(dialAfter)))) {
			if sw, ok := s.cfg.Host.Network().(*swarm.Swarm); ok {
				sw.Backoff().Clear(p)
			}
			err = s.exchange(ctx, p, addrs)
		}
		if err != nil {
			log.Debugw("introduction failed", "peer", p, "error", err)
		}
	})
}

// goIntroduce runs fn in the background, with a context that ends at
// sign-out, unless the service is signed out or an introduction to p is
// under way already.
func (s *Service) goIntroduce(p peer.ID, fn func(ctx context.Context)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.active || s.inflight[p] {
		return
	}
	s.inflight[p] = true
	s.introducing.Add(1)
	ctx := s.activeCtx
	s.wg.Go(func() {
		defer func() {
			s.mu.Lock()
			delete(s.inflight, p)
			s.mu.Unlock()
			s.introducing.Done()
		}()
		fn(ctx)
	})
}

// dialAfter is how long the node with the greater peer ID waits before it
// introduces itself to a node both found at once.
const dialAfter = 50 * time.Millisecond

// sleep waits d, or less if ctx ends; it reports whether ctx is still on.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// errSignedOut means the other node answered with a bye: it is not in
// People Near Me (any more).
var errSignedOut = errors.New("near: peer is not signed in to People Near Me")

// exchange introduces this node to p and records p's answer: p is added or
// updated, or removed when it answers with a bye.
func (s *Service) exchange(ctx context.Context, p peer.ID, addrs []ma.Multiaddr) error {
	ctx, cancel := context.WithTimeout(ctx, card.Timeout)
	defer cancel()
	if len(addrs) > 0 {
		s.cfg.Host.Peerstore().AddAddrs(p, addrs, peerstore.TempAddrTTL)
	}
	// Connect first: what this node tells p (its presence) depends on
	// whether p is connected from this subnet.
	if err := s.cfg.Host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		return err
	}
	mine, err := s.cfg.Mine(p)
	if err != nil {
		return err
	}
	mine.Near = true
	theirs, err := card.Exchange(ctx, s.cfg.Host, p, mine)
	if err != nil {
		return err
	}
	if theirs.Bye || theirs.Card == nil {
		s.remove(p, false)
		return errSignedOut
	}
	s.upsert(p, theirs)
	return nil
}

// notifee receives mDNS discoveries, each on a goroutine of mDNS's own.
type notifee struct{ s *Service }

func (n notifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == n.s.cfg.Host.ID() {
		return
	}
	if _, known := n.s.Get(ai.ID); known {
		return // mDNS repeats itself; the prober keeps known people fresh
	}
	n.s.goExchange(ai.ID, ai.Addrs)
}
