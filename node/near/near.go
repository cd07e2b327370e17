// Package near is People Near Me: the peercollab nodes on this node's
// subnets, found and followed through their announcements (package
// protocols/announce: signed profiles in Multicast DNS), with no connection
// held to any of them.
//
// Signed in, the service multicasts this node's announcement at once, when
// its profile changes, and every refresh interval; and it asks the subnet
// for everyone's announcement (each node answers the asker alone). An entry
// appears when a node's announcement arrives, is updated by a newer one, and
// disappears:
//   - at once when the node signs out or its daemon stops (it announces a
//     bye);
//   - when nothing newer was heard of it for announce.LostAfter of the
//     refresh interval it states (three missed announcements and a second:
//     7 s by default) when it vanished silently: killed, cable cut.
//
// The refresh interval grows with the number of people near (Interval, or
// one announcement per SubnetRate per second of the whole subnet, whichever
// is longer), so the packets a node receives per second stay bounded however
// crowded its subnet is. The list is bounded and fair among source addresses
// (see table), and checking signatures is rate limited per source address,
// so that keys made by the thousand neither crowd out the honest neighbours
// nor use up the CPU.
//
// Who sees what: an announcement is public on the subnet. Anyone there,
// blocked contacts included, reads the display name, e-mail, endpoint name,
// presence and addresses of a node signed in to People Near Me; to hide them
// from someone on the subnet, sign out of People Near Me. Applications and
// objects are never announced; they go to watchers over the endpoint
// protocol, by the watcher rules.
//
// The card protocol (protocols/card) fetches a person's contact card when
// it is needed (adding them as a contact): connect, exchange, and the
// connection closes when idle.
package near

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/time/rate"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/internal/retry"
	"github.com/peercollab/peercollab/protocols/announce"
	"github.com/peercollab/peercollab/protocols/card"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

var log = logging.Logger("peercollab/near")

// Defaults.
const (
	// DefaultInterval is the shortest refresh interval.
	DefaultInterval = 2 * time.Second
	// DefaultSubnetRate is how many announcements per second the whole
	// subnet sends at most in steady state.
	DefaultSubnetRate = 20
	// DefaultMaxPeople bounds the list.
	DefaultMaxPeople = 1024
	// DefaultPerAddr is how many people one source address may hold.
	DefaultPerAddr = 4
)

// Limits of the work done for others, and timings.
const (
	// verifyPerAddr and verifyBurst bound the signatures checked for one
	// source address a second; verifyAll and verifyAllBurst for all.
	verifyPerAddr, verifyBurst = 10, 30
	verifyAll, verifyAllBurst  = 500, 1000
	// answerPerAddr and answerAll bound the queries answered.
	answerPerAddr, answerBurst = 2, 6
	answerAll, answerAllBurst  = 200, 400
	// maxLimiters bounds the addresses rate limited at once.
	maxLimiters = 4096
	// minSpacing separates two announcements of this node.
	minSpacing = 100 * time.Millisecond
	// refreshJitter shortens each refresh interval by up to this share,
	// so that nodes started together do not stay in step.
	refreshJitter = 0.1
	sweepInterval = time.Second
	// byeRepeats is how often a bye is sent (a lost one leaves the node
	// listed until it is lost).
	byeRepeats = 2
)

// EvtChanged is the event type of a change of the list.
const EvtChanged = "near.changed"

// Errors of the service.
var (
	ErrNotSignedIn = errors.New("near: not signed in to People Near Me; run `peercollab signin nearme`")
	ErrNotFound    = errors.New("near: nobody near matches")
	ErrAmbiguous   = errors.New("near: more than one person near matches")
	ErrWrongCard   = errors.New("near: the card this person sent is not the certificate they announce")
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
	Since        time.Time            `json:"since"`
	LastSeen     time.Time            `json:"last_seen"`
}

// ChangeEvent is the payload of EvtChanged (Windows'
// PEOPLE_NEAR_ME_CHANGED).
type ChangeEvent struct {
	Change contacts.ChangeType `json:"change"`
	Person Person              `json:"person"`
}

// Profile is what this node announces of itself.
type Profile struct {
	DisplayName, Email, EndpointName string
	Presence                         endpoint.Presence
	Fingerprint                      contacts.Fingerprint
}

// Config is what the service needs from its node.
type Config struct {
	Host host.Host
	Hub  *events.Hub
	// Key signs the announcements: the host's identity key.
	Key crypto.PrivKey
	// Profile returns this node's public profile. It is called from the
	// service's goroutines.
	Profile func() (Profile, error)
	// Mine returns this node's introduction for the card protocol, to
	// peer to. It is called from the stream's goroutine.
	Mine func(to peer.ID) (card.Hello, error)
	// Port is the Multicast DNS port. Default: announce.Port (5353).
	Port int
	// Interval, SubnetRate, MaxPeople, PerAddr: 0 means the defaults above.
	Interval   time.Duration
	SubnetRate float64
	MaxPeople  int
	PerAddr    int
}

// Service keeps the list of people near. Its methods are safe for
// concurrent use.
type Service struct {
	cfg     Config
	cards   *card.Service
	subnets subnets
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.Mutex
	active bool
	closed bool
	// run ends the goroutines of a signed-in period.
	run     context.CancelFunc
	runWG   sync.WaitGroup
	socks   *sockets
	table   *table
	added   uint64
	seq     uint64
	lastPkt []byte // the last announcement sent, to answer queries with
	kick    chan struct{}

	// received is given every verified hello (SetReceived).
	received atomic.Pointer[func(peer.ID, card.Hello)]

	limitMu   sync.Mutex
	verify    limiterSet
	answer    limiterSet
	verifyAll *rate.Limiter
	answerAll *rate.Limiter
}

// New makes the service, signed out: it answers card exchanges only after
// Start.
func New(cfg Config) (*Service, error) {
	if cfg.Key == nil || cfg.Profile == nil {
		return nil, errors.New("near: no key or profile")
	}
	cfg.Port = cmp.Or(cfg.Port, announce.Port)
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.SubnetRate = cmp.Or(cfg.SubnetRate, DefaultSubnetRate)
	cfg.MaxPeople = cmp.Or(cfg.MaxPeople, DefaultMaxPeople)
	cfg.PerAddr = cmp.Or(cfg.PerAddr, DefaultPerAddr)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, ctx: ctx, cancel: cancel,
		verify:    limiterSet{perAddr: rate.Limit(verifyPerAddr), burst: verifyBurst},
		answer:    limiterSet{perAddr: rate.Limit(answerPerAddr), burst: answerBurst},
		verifyAll: rate.NewLimiter(verifyAll, verifyAllBurst), answerAll: rate.NewLimiter(answerAll, answerAllBurst)}
	s.table = newTable(cfg.MaxPeople, cfg.PerAddr, s.subnets.isLocal)
	s.cards = card.New(cfg.Host, card.Callbacks{Mine: s.answerHello, Received: s.hello})
	return s, nil
}

// SetReceived sets the function given every verified hello that arrives
// over the card protocol, whether or not the node is in People Near Me (a
// contact's hello carries its card, which may bear a new name). It runs on
// the stream's goroutine.
func (s *Service) SetReceived(f func(from peer.ID, h card.Hello)) { s.received.Store(&f) }

func (s *Service) hello(from peer.ID, h card.Hello) {
	if f := s.received.Load(); f != nil {
		(*f)(from, h)
	}
}

// Close signs out without a bye and stops everything. It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stop(false)
	s.cards.Close()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Start signs in to People Near Me: announce, ask, listen.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active || s.closed {
		return nil
	}
	socks, err := openSockets(s.cfg.Port)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.socks, s.run, s.active = socks, cancel, true
	s.kick = make(chan struct{}, 1)
	s.runWG.Go(func() { read(socks.mc, s.handle) })
	s.runWG.Go(func() { read(socks.uc, s.handle) })
	s.runWG.Go(func() { s.announceLoop(ctx, socks) })
	s.runWG.Go(func() { s.sweepLoop(ctx) })
	return nil
}

// Stop signs out of People Near Me: it announces a bye, so that the others
// drop this node at once, stops listening and empties the list.
func (s *Service) Stop(context.Context) { s.stop(true) }

func (s *Service) stop(bye bool) {
	s.mu.Lock()
	if !s.active {
		s.mu.Unlock()
		return
	}
	s.active = false
	socks, cancel := s.socks, s.run
	s.socks = nil
	changes := s.table.clear()
	s.mu.Unlock()
	cancel()
	if bye {
		if pkt, err := s.packet(true); err == nil {
			for range byeRepeats {
				socks.multicast(socks.mc, pkt)
			}
		} else {
			log.Warnw("bye", "error", err)
		}
	}
	socks.close()
	s.runWG.Wait()
	s.publish(changes)
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
	out := make([]Person, 0, len(s.table.people))
	for _, e := range s.table.people {
		out = append(out, e.person)
	}
	slices.SortFunc(out, func(a, b Person) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName)), cmp.Compare(a.Peer, b.Peer))
	})
	return out, nil
}

// Get returns the person p, if near.
func (s *Service) Get(p peer.ID) (Person, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.table.people[p]; ok {
		return e.person, true
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
// presence), at once.
func (s *Service) Announce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// Card fetches the contact card of p, a person near, over the card
// protocol, and checks that it holds the certificate p announces.
func (s *Service) Card(ctx context.Context, p peer.ID) (*contacts.Card, error) {
	person, ok := s.Get(p)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	ctx, cancel := context.WithTimeout(ctx, card.Timeout)
	defer cancel()
	if err := s.cfg.Host.Connect(ctx, peer.AddrInfo{ID: p, Addrs: person.Addrs}); err != nil {
		return nil, fmt.Errorf("near: connect to %s: %w", person.DisplayName, err)
	}
	mine, err := s.cfg.Mine(p)
	if err != nil {
		return nil, err
	}
	theirs, err := card.Exchange(ctx, s.cfg.Host, p, mine)
	if err != nil {
		return nil, err
	}
	if theirs.Bye || theirs.Card == nil {
		return nil, fmt.Errorf("%w: %s left People Near Me", ErrNotFound, person.DisplayName)
	}
	if theirs.Card.Fingerprint() != person.Fingerprint {
		return nil, ErrWrongCard
	}
	s.hello(p, theirs) // their own hello, as if they had sent it
	return theirs.Card, nil
}

// answerHello is the card protocol's Mine callback: signed out, the answer
// is a bye.
func (s *Service) answerHello(to peer.ID) (card.Hello, bool) {
	if !s.Active() {
		return card.Hello{}, false
	}
	h, err := s.cfg.Mine(to)
	if err != nil {
		log.Warnw("own introduction", "error", err)
		return card.Hello{}, false
	}
	return h, true
}

// interval is the current refresh interval: Interval, or longer on a
// crowded subnet so that it sends SubnetRate announcements a second at most.
func (s *Service) interval() time.Duration {
	s.mu.Lock()
	n := len(s.table.people) + 1
	s.mu.Unlock()
	return max(s.cfg.Interval, time.Duration(float64(n)/s.cfg.SubnetRate*float64(time.Second)))
}

// packet signs a new announcement (a bye when bye is set) and returns it.
func (s *Service) packet(bye bool) ([]byte, error) {
	r := announce.Record{Refresh: s.interval(), Bye: bye}
	if !bye {
		prof, err := s.cfg.Profile()
		if err != nil {
			return nil, err
		}
		r.DisplayName, r.Email, r.EndpointName, r.Presence, r.Fingerprint =
			prof.DisplayName, prof.Email, prof.EndpointName, prof.Presence, prof.Fingerprint
		r.Addrs = lanAddrs(s.cfg.Host.Addrs())
	}
	s.mu.Lock()
	// Strictly greater than any before, also across restarts.
	s.seq = max(s.seq+1, uint64(time.Now().UnixNano()))
	r.Seq = s.seq
	s.mu.Unlock()
	env, err := announce.Seal(r, s.cfg.Key)
	if err != nil {
		return nil, err
	}
	pkt, err := announce.Announcement(announce.Instance(s.cfg.Host.ID()), env, announce.LostAfter(r.Refresh))
	if err != nil {
		return nil, err
	}
	if !bye {
		s.mu.Lock()
		s.lastPkt = pkt
		s.mu.Unlock()
	}
	return pkt, nil
}

// lanAddrs are the addresses worth announcing on a subnet: IP addresses,
// not circuits.
func lanAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		if manet.IsThinWaist(a) && len(out) < announce.MaxAddrs {
			out = append(out, a)
		}
	}
	return out
}

// announceLoop announces this node at once, again a second later (a lost
// first packet), on every change and every refresh interval; and it asks
// the subnet for everyone's announcement three times in the first seconds
// (a lost query or answer).
func (s *Service) announceLoop(ctx context.Context, socks *sockets) {
	query := announce.Query()
	queries := []time.Duration{0, time.Second, 3 * time.Second}
	start := time.Now()
	next := time.Now()
	repeat := time.Now().Add(time.Second)
	var last time.Time
	for {
		if now := time.Now(); !now.Before(next) || (!repeat.IsZero() && !now.Before(repeat)) {
			if since := now.Sub(last); since < minSpacing && !retry.Sleep(ctx, minSpacing-since) {
				return
			}
			if pkt, err := s.packet(false); err != nil {
				log.Warnw("announcement", "error", err)
			} else {
				socks.multicast(socks.mc, pkt)
			}
			last = time.Now()
			if !now.Before(repeat) {
				repeat = time.Time{}
			}
			iv := s.interval()
			next = last.Add(time.Duration(float64(iv) * (1 - refreshJitter*mrand.Float64())))
		}
		for len(queries) > 0 && time.Since(start) >= queries[0] {
			socks.multicast(socks.uc, query)
			queries = queries[1:]
		}
		wake := next
		if !repeat.IsZero() && repeat.Before(wake) {
			wake = repeat
		}
		if len(queries) > 0 && start.Add(queries[0]).Before(wake) {
			wake = start.Add(queries[0])
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.kick:
			next = time.Now()
		case <-t.C:
		}
		t.Stop()
	}
}

// sweepLoop drops the people not heard of in time.
func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			changes := s.table.expire(now)
			s.mu.Unlock()
			s.publish(changes)
			s.limitMu.Lock()
			s.verify.forgetIdle()
			s.answer.forgetIdle()
			s.limitMu.Unlock()
		}
	}
}

// handle takes one packet heard on either socket. It runs on the
// socket's reading goroutine.
func (s *Service) handle(pkt []byte, from netip.AddrPort) {
	msg, err := announce.Parse(pkt)
	if err != nil {
		return // not ours to judge: other mDNS software shares the port
	}
	src := from.Addr().Unmap()
	if msg.Query {
		s.answerQuery(from)
	}
	for _, env := range msg.Envelopes {
		s.take(env, src)
	}
}

// answerQuery sends this node's announcement to the asker alone.
func (s *Service) answerQuery(to netip.AddrPort) {
	s.mu.Lock()
	pkt, socks := s.lastPkt, s.socks
	s.mu.Unlock()
	if pkt == nil || socks == nil || !s.allow(&s.answer, s.answerAll, to.Addr().Unmap()) {
		return
	}
	if err := socks.unicast(pkt, to); err != nil {
		log.Debugw("answer query", "to", to, "error", err)
	}
}

// take applies one envelope heard from src.
func (s *Service) take(env []byte, src netip.Addr) {
	s.mu.Lock()
	held := s.table.holds(env)
	s.mu.Unlock()
	if held {
		return // a repeat: nothing new, and it refreshes nothing
	}
	if !s.allow(&s.verify, s.verifyAll, src) {
		return
	}
	r, err := announce.Open(env)
	if err != nil {
		log.Debugw("bad announcement", "from", src, "error", err)
		return
	}
	if r.Peer == s.cfg.Host.ID() {
		return
	}
	s.mu.Lock()
	if !s.active {
		s.mu.Unlock()
		return
	}
	s.added++
	out, changes := s.table.apply(r, env, src, time.Now(), s.added)
	s.mu.Unlock()
	switch out {
	case addrFull, tableFull:
		log.Debugw("announcement refused", "peer", r.Peer, "from", src, "full", out == tableFull)
	}
	for _, c := range changes {
		if c.typ != contacts.Deleted && len(c.person.Addrs) > 0 {
			s.cfg.Host.Peerstore().AddAddrs(c.person.Peer, c.person.Addrs, peerstore.RecentlyConnectedAddrTTL)
		}
	}
	s.publish(changes)
}

func (s *Service) publish(changes []change) {
	for _, c := range changes {
		log.Debugw("person near", "peer", c.person.Peer, "change", c.typ)
		s.cfg.Hub.Publish(EvtChanged, ChangeEvent{c.typ, c.person})
	}
}

// allow applies a per-address and an overall rate limit.
func (s *Service) allow(set *limiterSet, all *rate.Limiter, src netip.Addr) bool {
	s.limitMu.Lock()
	defer s.limitMu.Unlock()
	return set.allow(src, s.subnets.isLocal(src)) && all.Allow()
}

// limiterSet is a rate limiter per source address, bounded: a limiter whose
// bucket is full again is forgotten (a new one is the same), and when
// maxLimiters addresses are all busy, a new address is refused rather than
// someone forgotten.
type limiterSet struct {
	perAddr rate.Limit
	burst   int
	m       map[netip.Addr]*rate.Limiter
}

func (l *limiterSet) allow(src netip.Addr, exempt bool) bool {
	if exempt {
		return true
	}
	lim, ok := l.m[src]
	if !ok {
		if l.m == nil {
			l.m = map[netip.Addr]*rate.Limiter{}
		}
		if len(l.m) >= maxLimiters {
			l.forgetIdle()
			if len(l.m) >= maxLimiters {
				return false
			}
		}
		lim = rate.NewLimiter(l.perAddr, l.burst)
		l.m[src] = lim
	}
	return lim.Allow()
}

func (l *limiterSet) forgetIdle() {
	now := time.Now()
	for a, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, a)
		}
	}
}
