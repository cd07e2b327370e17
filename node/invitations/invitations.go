// Package invitations is a node's invitation inbox and outbox: the
// invitations it sends and receives, kept durably in the state database so
// that none is lost when a connection drops or either side restarts.
//
// A sent invitation is pending until the invitee acknowledges it, then
// delivered, then accepted, declined, expired, cancelled, or error (with a
// reason, such as unreachable when it could not be delivered before it
// expired, or inbox full when the invitee keeps no more from strangers). A
// received invitation is pending until the user (or an application's
// auto-accept) accepts or declines it, or it expires or is cancelled. Every
// step the peer has to hear of (the invitation, the response, the
// cancellation) stays in the record until the peer acknowledges it, and is
// resent with backoff (with jitter) until then or until the invitation
// expires. Every change is published as an "invitation.changed" event and
// to every subscription (Subscribe: Next and Close, as the event stream;
// the node's sessions follow the answers to their invitations so).
//
// Receiving follows the service's policy (anyone, trusted contacts only, or
// nobody: Policy and SetPolicy; it is kept in the node's settings); an
// invitation for an application that is not registered is declined with
// that reason at once. Accepting runs the application's launch command
// with the invitation in its environment, outside the service's lock. What
// the service needs of its node (its card, trust, contacts, names,
// registered applications, connections) is one small interface, Node.
//
// # What others can make a node keep
//
// Peer IDs cost nothing, so the inbox bounds what it keeps by what that
// costs, not by who sends it (see Limits for every bound and its default).
// A received invitation is from a contact when its sender is in the contact
// store or its card is trusted (endorsed by a trusted contact), and from a
// stranger otherwise. Unanswered invitations count against one of two
// budgets, each bounded in number and in bytes (data, card, message and a
// fixed overhead per record): the strangers' and the contacts'. Strangers
// never use the contacts' budget, so a contact's invitation is taken
// however many strangers flood the node. Within the strangers' budget one
// peer ID, one source address, and one network (a /24 of IPv4, a /48 of
// IPv6) may each hold only a share. The source address is the remote
// address of the connection the invitation came over: over a relayed
// connection that is the relay's, so all who come through one relay share
// its shares. A stranger's invitation is kept unanswered at most
// StrangerExpiry (5 minutes, as long as Windows waits for an answer),
// whatever expiry its sender chose; the sender is not told, and sees it
// expire at its own time.
//
// When a budget or a share is full, the newest invitation is refused: its
// sender gets an error response with the reason InboxFull ("inbox full, try
// later") at once, and nothing is stored. No invitation already kept is
// evicted for it: eviction would take away one the user may be reading,
// and would owe its sender a message, traffic that anyone could make this
// node send by flooding it.
//
// Before that, invitations are rate limited with token buckets: per peer
// ID for everyone (contacts and strangers in separate tables), and for
// strangers also per source address and per network, refused with the
// reason RateLimited. The limiter tables are bounded without forgetting
// whom they limit: a limiter whose bucket is full again is the same as a
// fresh one and is dropped when room is needed; a table full of limiters
// still in use refuses new strangers rather than drop one.
//
// The inbox keeps an index of small records in memory, listed without
// touching the disk; each invitation's data and card are stored apart and
// read only when that one invitation is asked for (Get, and so the
// application's launch info). A received invitation's data and card are
// deleted once it is declined, expired, cancelled or failed and its answer
// delivered; an accepted one keeps them for its application. Answered
// invitations from strangers stay listed (without data) up to
// StrangerHistory, the oldest removed first.
package invitations

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/internal/prefix"
	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/protocols/invite"
)

var log = logging.Logger("peercollab/invitations")

// EvtChanged is the event type of every change of an invitation.
const EvtChanged = "invitation.changed"

// Direction says who sent an invitation.
type Direction string

// Directions.
const (
	Sent     Direction = "sent"
	Received Direction = "received"
)

// State is where an invitation stands.
type State string

// States.
const (
	Pending   State = "pending"
	Delivered State = "delivered"
	Accepted  State = "accepted"
	Declined  State = "declined"
	Expired   State = "expired"
	Cancelled State = "cancelled"
	Error     State = "error"
)

// Answered reports whether the state is final.
func (s State) Answered() bool { return s != Pending && s != Delivered }

func (s State) valid() bool {
	switch s {
	case Pending, Delivered, Accepted, Declined, Expired, Cancelled, Error:
		return true
	}
	return false
}

// step is a message the peer has not acknowledged yet.
type step string

const (
	stepNone    step = ""
	stepInvite  step = "invite"
	stepRespond step = "respond"
	stepCancel  step = "cancel"
)

// Record is one invitation, sent or received. Records from List and from
// events carry neither data nor card; Get returns them whole.
type Record struct {
	invite.Invitation
	Direction Direction `json:"direction"`
	// Peer is the other party: the invitee of a sent invitation, the
	// inviter of a received one.
	Peer     peer.ID `json:"peer"`
	PeerName string  `json:"peer_name"`
	State    State   `json:"state"`
	// Reason explains an error or a decline.
	Reason invite.Reason `json:"reason,omitempty"`
	// Trusted: for a received invitation, the inviter is a trusted contact
	// (or endorsed by one); for a sent one, the invitee is a contact.
	Trusted bool `json:"trusted"`
	// Source is the remote address of the connection a received
	// invitation came over (a relay's for a relayed connection).
	Source string `json:"source,omitempty"`
	// Batch groups the invitations sent by one call of Send.
	Batch string `json:"batch,omitempty"`
	// Person is set on a sent invitation that went to several devices of
	// one person at once (SendTo): the person's ID. The first of them
	// accepted answers for the person, and the others are withdrawn; Count
	// counts the person once.
	Person  peer.ID   `json:"person,omitempty"`
	Updated time.Time `json:"updated"`
	// Launched is set once the application was started for this accepted
	// invitation.
	Launched bool `json:"launched,omitempty"`

	// Unacked is the step the peer has not acknowledged yet.
	Unacked step `json:"unacked,omitempty"`
	// Card is the inviter's card (PEM) of a received invitation.
	Card []byte `json:"card,omitempty"`
}

func (r *Record) key() string { return string(r.Direction) + "/" + r.ID }

// View is a record as events and the API show it: without the card.
func (r Record) View() Record {
	r.Card = nil
	r.Data = append([]byte(nil), r.Data...)
	return r
}

// App is what the service needs to know of a registered application.
type App struct {
	Launch string
	// AutoAccept accepts invitations to the application from trusted
	// contacts without asking.
	AutoAccept bool
}

// Node is what the service needs of its node. Its methods are called on
// the service's goroutines, the invitation protocol's stream goroutines and
// the callers' (they must be safe for concurrent use); IsContact, Name and
// App may be called with the service's lock held (what a flood is refused
// for costs no more than it must), so none of them may call the service.
type Node interface {
	// Card returns this node's card, sent with every invitation.
	Card() (*contacts.Card, error)
	// Trusted tells whether a card's peer is a trusted contact, or
	// endorsed by one.
	Trusted(*contacts.Card) bool
	// IsContact tells whether p is a contact.
	IsContact(p peer.ID) bool
	// Name names a peer for a person.
	Name(p peer.ID) string
	// App returns a registered application.
	App(id string) (App, bool)
	// Connect makes sure there is a connection to p, trying addrs too.
	Connect(ctx context.Context, p peer.ID, addrs []ma.Multiaddr) error
}

// Config is what the service is built from.
type Config struct {
	Host host.Host
	// State holds the invitations (the relaxed database).
	State *state.DB
	// Settings holds the receiving policy (the node's durable database);
	// nil keeps it in memory only.
	Settings *state.DB
	Hub      *events.Hub
	// Home is the data directory, for launched applications.
	Home string
	Node Node
	// RateLimit and RateBurst bound invitations per peer ID, contact or
	// stranger: 0 means 20 a minute with a burst of 10.
	RateLimit rate.Limit
	RateBurst int
	// Limits bound what strangers and contacts can make this node keep;
	// zero fields mean the defaults documented on each.
	Limits Limits
}

// Errors of the service.
var (
	ErrNotFound    = errors.New("invitations: no such invitation")
	ErrBadPolicy   = errors.New("invitations: unknown policy")
	ErrAmbiguous   = errors.New("invitations: more than one invitation starts so")
	ErrAnswered    = errors.New("invitations: the invitation was answered, cancelled or expired already")
	ErrNotReceived = errors.New("invitations: you can only accept or decline an invitation you received")
	ErrNotSent     = errors.New("invitations: you can only cancel an invitation you sent")
	ErrNoApp       = errors.New("invitations: no application with this ID is registered here")
	ErrNoPeers     = errors.New("invitations: name at least one peer to invite")
	ErrSelf        = errors.New("invitations: a node cannot invite itself")
)

// Service is the inbox and outbox. Its methods are safe for concurrent use.
type Service struct {
	cfg   Config
	lim   Limits
	proto *invite.Service
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu      sync.Mutex
	records map[string]*entry // by key
	timers  map[string]*time.Timer
	sending map[string]bool // keys with a delivery goroutine
	in      intake
	// history holds the keys of answered invitations from strangers,
	// oldest first, for pruning beyond lim.StrangerHistory.
	history []string
	policy  Policy
	closed  bool

	// feed hands every change to the subscriptions.
	feed Feed
}

// New loads the stored invitations, expires those overdue, resumes the
// deliveries not yet acknowledged, and serves the invitation protocol.
func New(cfg Config) (*Service, error) {
	if cfg.RateLimit == 0 {
		cfg.RateLimit, cfg.RateBurst = rate.Every(3*time.Second), 10
	}
	policy, err := loadPolicy(cfg.Settings)
	if err != nil {
		return nil, fmt.Errorf("load the invitation policy: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, lim: cfg.Limits.withDefaults(), ctx: ctx, stop: cancel, records: map[string]*entry{},
		timers: map[string]*time.Timer{}, sending: map[string]bool{}, policy: policy}
	s.in = newIntake(s.lim, cfg.RateLimit, cfg.RateBurst)
	if err := s.load(); err != nil {
		cancel()
		return nil, fmt.Errorf("load invitations: %w", err)
	}
	s.mu.Lock()
	for _, e := range s.records {
		s.scheduleLocked(e)
	}
	s.mu.Unlock()
	s.proto = invite.New(cfg.Host, handler{s})
	return s, nil
}

// Subscribe follows the changes of invitations from now on: every change
// of a record, in order, as events show it (without data or card). Pair
// it with Close.
func (s *Service) Subscribe() *Sub { return s.feed.Subscribe() }

// Close stops serving, delivering and expiring; it waits for deliveries
// under way. Stored invitations resume at the next New. Idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	s.proto.Close()
	s.stop()
	s.wg.Wait()
	s.feed.Close()
	return nil
}

// scheduleLocked arms a record's expiry and resumes its delivery.
func (s *Service) scheduleLocked(e *entry) {
	if e.State.Answered() && e.Unacked == stepNone {
		return
	}
	now := time.Now()
	if !e.State.Answered() {
		if !e.Expires.After(now) {
			s.expireLocked(e)
		} else if _, ok := s.timers[e.key()]; !ok {
			key := e.key()
			s.timers[key] = time.AfterFunc(e.Expires.Sub(now), func() { s.expire(key) })
		}
	}
	if e.Unacked != stepNone {
		s.deliverLocked(e)
	}
}

func (s *Service) expire(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.timers, key)
	if e, ok := s.records[key]; ok && !s.closed && !e.State.Answered() {
		s.expireLocked(e)
	}
}

// expireLocked ends an unanswered invitation at its expiry. A sent one
// never delivered ends in error: unreachable.
func (s *Service) expireLocked(e *entry) {
	if e.Direction == Sent && e.State == Pending {
		s.setLocked(e, Error, invite.Unreachable, stepNone)
		return
	}
	s.setLocked(e, Expired, invite.NoReason, stepNone)
}

// setLocked changes a record's state, stores it and publishes the change.
// An answer frees the record's place in its budget.
func (s *Service) setLocked(e *entry, st State, reason invite.Reason, unacked step) {
	e.State, e.Reason, e.Unacked, e.Updated = st, reason, unacked, time.Now().UTC()
	if st.Answered() {
		if t, ok := s.timers[e.key()]; ok {
			t.Stop()
			delete(s.timers, e.key())
		}
		s.releaseLocked(e)
	}
	s.saveLocked(e)
	if st.Answered() && e.Direction == Received && e.stranger {
		s.historyLocked(e)
	}
}

// publishLocked tells the event stream and the subscriptions of a
// change.
func (s *Service) publishLocked(e *entry) {
	v := e.Record.View()
	s.cfg.Hub.Publish(EvtChanged, v)
	s.feed.Publish(v)
}

// Get returns an invitation by ID (sent or received), with its data and,
// for a received one, the inviter's card, read from the database.
func (s *Service) Get(id string) (Record, error) {
	s.mu.Lock()
	e, err := s.findLocked(id)
	if err != nil {
		s.mu.Unlock()
		return Record{}, err
	}
	r, stored := e.Record, e.payload
	s.mu.Unlock()
	if stored {
		p, err := s.loadPayload(r.key())
		if err != nil {
			return Record{}, fmt.Errorf("read invitation %s: %w", r.ID, err)
		}
		r.Data, r.Card = p.Data, p.Card
	}
	return r, nil
}

// findLocked finds an invitation by ID or by a prefix of its ID that only
// one invitation has.
func (s *Service) findLocked(id string) (*entry, error) {
	if e, ok := s.records[string(Received)+"/"+id]; ok {
		return e, nil
	}
	if e, ok := s.records[string(Sent)+"/"+id]; ok {
		return e, nil
	}
	byID := func(yield func(string, *entry) bool) {
		for _, e := range s.records {
			if !yield(e.ID, e) {
				return
			}
		}
	}
	switch e, n := prefix.Find(byID, id); n {
	case 0:
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	case 1:
		return e, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrAmbiguous, id)
}

// Filter selects invitations for List; zero fields match everything.
type Filter struct {
	Direction Direction
	Batch     string
	SessionID string
	Open      bool // only those not answered yet
}

// List returns the invitations that match f, newest first, without their
// data and cards (see Get).
func (s *Service) List(f Filter) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, e := range s.records {
		if (f.Direction != "" && e.Direction != f.Direction) || (f.Batch != "" && e.Batch != f.Batch) ||
			(f.SessionID != "" && e.SessionID != f.SessionID) || (f.Open && e.State.Answered()) {
			continue
		}
		out = append(out, e.Record.View())
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Or(b.Sent.Compare(a.Sent), cmp.Compare(a.ID, b.ID)) })
	return out
}

// Tally counts invitations by how they stand.
type Tally struct {
	Total     int `json:"total"`
	Accepted  int `json:"accepted"`
	Declined  int `json:"declined"`
	NoAnswer  int `json:"no_answer"` // pending or delivered
	Expired   int `json:"expired"`
	Cancelled int `json:"cancelled"`
	Error     int `json:"error"`
}

// Done reports whether every invitation has its final answer.
func (t Tally) Done() bool { return t.NoAnswer == 0 }

// Count tallies records; the invitations of a batch to several devices of
// one person (Record.Person) count once, as the person answered: accepted
// if one was, else unanswered while one is, else declined if one was, else
// as the first of them stands.
func Count(rs []Record) Tally {
	rs = byPerson(rs)
	t := Tally{Total: len(rs)}
	for _, r := range rs {
		switch r.State {
		case Accepted:
			t.Accepted++
		case Declined:
			t.Declined++
		case Expired:
			t.Expired++
		case Cancelled:
			t.Cancelled++
		case Error:
			t.Error++
		default:
			t.NoAnswer++
		}
	}
	return t
}

// personRank orders the states of one person's invitations: the highest
// stands for the person.
func personRank(st State) int {
	switch st {
	case Accepted:
		return 4
	case Pending, Delivered:
		return 3
	case Declined:
		return 2
	}
	return 1
}

// byPerson returns rs with the invitations of a batch to one person's
// devices merged into one record, whose state is the person's (see Count).
func byPerson(rs []Record) []Record {
	out := make([]Record, 0, len(rs))
	at := map[[2]string]int{}
	for _, r := range rs {
		if r.Person == "" || r.Direction != Sent {
			out = append(out, r)
			continue
		}
		k := [2]string{r.Batch, string(r.Person)}
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, r)
			continue
		}
		if personRank(r.State) > personRank(out[i].State) {
			out[i].State = r.State
		}
	}
	return out
}
