// Package invitations is a node's invitation inbox and outbox: the
// invitations it sends and receives, kept durably in the state database so
// that none is lost when a connection drops or either side restarts.
//
// A sent invitation is pending until the invitee acknowledges it, then
// delivered, then accepted, declined, expired, cancelled, or error (with a
// reason, such as unreachable when it could not be delivered before it
// expired). A received invitation is pending until the user (or an
// application's auto-accept) accepts or declines it, or it expires or is
// cancelled. Every step the peer has to hear of (the invitation, the
// response, the cancellation) stays in the record until the peer
// acknowledges it, and is resent with backoff until then or until the
// invitation expires. Every change is published as an "invitation.changed"
// event.
//
// Receiving follows the node's policy (anyone, trusted contacts only, or
// nobody) and a per-peer rate limit; an invitation for an application that
// is not registered is declined with that reason at once. Accepting runs the
// application's launch command with the invitation in its environment.
package invitations

import (
	"cmp"
	"context"
	"encoding/json"
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

const bucket = "invitations"

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

// step is a message the peer has not acknowledged yet.
type step string

const (
	stepNone    step = ""
	stepInvite  step = "invite"
	stepRespond step = "respond"
	stepCancel  step = "cancel"
)

// Record is one invitation, sent or received.
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
	// Batch groups the invitations sent by one call of Send.
	Batch   string    `json:"batch,omitempty"`
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

// Policy says whose invitations a node takes.
type Policy string

// Policies.
const (
	Anyone   Policy = "anyone"
	Contacts Policy = "contacts"
	Nobody   Policy = "nobody"
)

// ParsePolicy reads a policy name.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Anyone, Contacts, Nobody:
		return p, nil
	}
	return "", fmt.Errorf("invitations: unknown policy %q (anyone, contacts or nobody)", s)
}

// App is what the service needs to know of a registered application.
type App struct {
	Launch string
	// AutoAccept accepts invitations to the application from trusted
	// contacts without asking.
	AutoAccept bool
}

// Config is what the service needs from its node.
type Config struct {
	Host  host.Host
	State *state.DB
	Hub   *events.Hub
	// Home is the data directory, for launched applications.
	Home string
	// MyCard returns this node's card, sent with every invitation.
	MyCard func() (*contacts.Card, error)
	// Trust tells whether a card's peer is a trusted contact, or endorsed
	// by one; Name names a peer for a person.
	Trust func(*contacts.Card) bool
	Name  func(peer.ID) string
	// IsContact tells whether a peer is a contact.
	IsContact func(peer.ID) bool
	// App returns a registered application.
	App func(id string) (App, bool)
	// Policy returns whose invitations to take.
	Policy func() Policy
	// Connect makes sure there is a connection to p, using addrs too.
	Connect func(ctx context.Context, p peer.ID, addrs []ma.Multiaddr) error
	// Changed, when set, is given every change of an invitation, in order,
	// on a goroutine of the service's own (never under its lock, so it may
	// call the service).
	Changed func(Record)
	// RateLimit and RateBurst bound invitations per peer: 0 means 20 a
	// minute with a burst of 10.
	RateLimit rate.Limit
	RateBurst int
}

// Errors of the service.
var (
	ErrNotFound    = errors.New("invitations: no such invitation")
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
	proto *invite.Service
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu       sync.Mutex
	records  map[string]*Record // by key
	limiters map[peer.ID]*rate.Limiter
	timers   map[string]*time.Timer
	sending  map[string]bool // keys with a delivery goroutine
	closed   bool

	// changes queues records for cfg.Changed; notify wakes its goroutine.
	changes []Record
	notify  chan struct{}
}

// New loads the stored invitations, expires those overdue, resumes the
// deliveries not yet acknowledged, and serves the invitation protocol.
func New(cfg Config) (*Service, error) {
	if cfg.RateLimit == 0 {
		cfg.RateLimit, cfg.RateBurst = rate.Every(3*time.Second), 10
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, ctx: ctx, stop: cancel, records: map[string]*Record{}, limiters: map[peer.ID]*rate.Limiter{},
		timers: map[string]*time.Timer{}, sending: map[string]bool{}, notify: make(chan struct{}, 1)}
	if cfg.Changed != nil {
		s.wg.Go(s.notifyLoop)
	}
	err := cfg.State.ForEach(bucket, func(_ string, raw []byte) error {
		r := new(Record)
		if err := json.Unmarshal(raw, r); err != nil {
			return err
		}
		s.records[r.key()] = r
		return nil
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("load invitations: %w", err)
	}
	s.mu.Lock()
	for _, r := range s.records {
		s.scheduleLocked(r)
	}
	s.mu.Unlock()
	s.proto = invite.New(cfg.Host, handler{s})
	return s, nil
}

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
	return nil
}

// scheduleLocked arms a record's expiry and resumes its delivery.
func (s *Service) scheduleLocked(r *Record) {
	if r.State.Answered() && r.Unacked == stepNone {
		return
	}
	now := time.Now()
	if !r.State.Answered() {
		if !r.Expires.After(now) {
			s.expireLocked(r)
		} else if _, ok := s.timers[r.key()]; !ok {
			key := r.key()
			s.timers[key] = time.AfterFunc(r.Expires.Sub(now), func() { s.expire(key) })
		}
	}
	if r.Unacked != stepNone {
		s.deliverLocked(r)
	}
}

func (s *Service) expire(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.timers, key)
	if r, ok := s.records[key]; ok && !s.closed && !r.State.Answered() {
		s.expireLocked(r)
	}
}

// expireLocked ends an unanswered invitation at its expiry. A sent one
// never delivered ends in error: unreachable.
func (s *Service) expireLocked(r *Record) {
	if r.Direction == Sent && r.State == Pending {
		s.setLocked(r, Error, invite.Unreachable, stepNone)
		return
	}
	s.setLocked(r, Expired, invite.NoReason, stepNone)
}

// setLocked changes a record's state, stores it and publishes the change.
func (s *Service) setLocked(r *Record, st State, reason invite.Reason, unacked step) {
	r.State, r.Reason, r.Unacked, r.Updated = st, reason, unacked, time.Now().UTC()
	s.saveLocked(r)
	if st.Answered() {
		if t, ok := s.timers[r.key()]; ok {
			t.Stop()
			delete(s.timers, r.key())
		}
	}
}

// saveLocked stores a record and publishes it.
func (s *Service) saveLocked(r *Record) {
	if err := s.cfg.State.Put(bucket, r.key(), r); err != nil {
		log.Errorw("store invitation", "invitation", r.ID, "error", err)
	}
	s.cfg.Hub.Publish(EvtChanged, r.View())
	if s.cfg.Changed != nil {
		s.changes = append(s.changes, r.View())
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// notifyLoop hands queued changes to cfg.Changed, in order.
func (s *Service) notifyLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.notify:
		}
		s.mu.Lock()
		batch := s.changes
		s.changes = nil
		s.mu.Unlock()
		for _, r := range batch {
			s.cfg.Changed(r)
		}
	}
}

// Get returns an invitation by ID (sent or received).
func (s *Service) Get(id string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findLocked(id)
	if err != nil {
		return Record{}, err
	}
	return *r, nil
}

// findLocked finds an invitation by ID or by a prefix of its ID that only
// one invitation has.
func (s *Service) findLocked(id string) (*Record, error) {
	if r, ok := s.records[string(Received)+"/"+id]; ok {
		return r, nil
	}
	if r, ok := s.records[string(Sent)+"/"+id]; ok {
		return r, nil
	}
	byID := func(yield func(string, *Record) bool) {
		for _, r := range s.records {
			if !yield(r.ID, r) {
				return
			}
		}
	}
	switch r, n := prefix.Find(byID, id); n {
	case 0:
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	case 1:
		return r, nil
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

// List returns the invitations that match f, newest first.
func (s *Service) List(f Filter) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.records {
		if (f.Direction != "" && r.Direction != f.Direction) || (f.Batch != "" && r.Batch != f.Batch) ||
			(f.SessionID != "" && r.SessionID != f.SessionID) || (f.Open && r.State.Answered()) {
			continue
		}
		out = append(out, r.View())
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

// Count tallies records.
func Count(rs []Record) Tally {
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
