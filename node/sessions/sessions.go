// Package sessions runs a node's collaboration sessions, hosted and joined:
// the host's state machine and the member's (package session) fed by the
// answers to its invitations and by the host, the session topic with its
// roster, heartbeats and sealed, signed messages (protocols/session), and
// reliable delivery: each sender's messages reach the application in
// order, and gaps (gossipsub loses messages right after a mesh forms) are
// repaired over the session stream protocol, from the host's log, the
// sender's, or another member's; a member whose last messages the host's
// heartbeat does not count (the host restarted, or missed them) hands them
// to the host directly.
//
// The topic carries envelopes sealed with the session key, under a random
// name that members learn when they join. The node relays the topic and
// takes its messages from the validator, so gossipsub passes none on; it
// sends its own only to the host and the members it knows, and the host
// passes every member's message on to all members (by Deliver to those it
// cannot reach on the topic). TopicPeer is the node's pubsub peer filter
// for session topics. A removed member is handed the roster that no longer
// names it, and is sent nothing more; asking to join, it is told it is no
// member. protocols/session says what an outsider can still observe.
//
// # Concurrency
//
// Each session has a lock of its own; the service's lock guards only the
// table of sessions and host requests, and nothing waits for the disk or
// the network under it. Each session a node is on has three goroutines
// while it is on its topic: a reader (the messages the validator took), a
// ticker (heartbeats, repairs, missing keys) and a sender that drains the
// session's one bounded outbound queue in order (envelopes onto the topic);
// messages that must go to a peer directly (a member off the topic's mesh,
// the host of a member off it) wait in a bounded lane per peer, drained by
// a goroutine while the lane holds anything. A Send that finds the key of
// the session's epoch missing waits for it on a channel, not by polling.
//
// # What is kept
//
// In the relaxed invitations database (state.Options.Relaxed): a hosted
// session's state and keys; a joined session's roster, keys and standing;
// its progress where its history does not tell it. In a log file per
// session (Config.Dir, see history.go): its history, every message
// delivered here as it travelled (sealed and signed), with its index and
// time, appended before the application hears of it. The history says how
// far the session came (the position reached in each sender's messages,
// the last sequence number this node used, how many messages it
// delivered), so that a node killed a moment later neither delivers a
// message twice nor uses a number twice, and `session messages` lists after
// a restart what it listed before. The history also is the log from which
// a node answers others' repairs, so a host that restarts can still hand
// its members what they missed. How much of it is kept is Retention: by
// default the last 10,000 messages of each session, and at most about 64
// MiB of them.
package sessions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/internal/prefix"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/protocols/endpoint"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

var log = logging.Logger("peercollab/sessions")

// Event types.
const (
	EvtChanged = "session.changed"
	EvtMessage = "session.message"
	EvtLost    = "session.lost"
)

// Defaults.
const (
	// DefaultHeartbeat is how often a host tells its members how far each
	// sender got.
	DefaultHeartbeat = 2 * time.Second
	// LogLimit is how many messages per session a node keeps by default
	// (Retention.Messages).
	LogLimit = 10000
	// DefaultHistoryBytes is how many bytes of messages per session a node
	// keeps by default (Retention.Bytes).
	DefaultHistoryBytes = 64 << 20
	// repairEvery is how often a member asks for what is missing.
	repairEvery = 300 * time.Millisecond
	// giveUpAfter is how long a gap may stay open before the missing
	// messages are declared lost.
	giveUpAfter = time.Minute
	bucket      = "sessions"
	// progressBucket holds each session's progress record, written with
	// every message sent and delivered (small, unlike the session's own).
	progressBucket = "session-progress"
)

// Retention bounds the history a node keeps of each session: the messages
// delivered there, which `session messages` lists and from which the node
// answers others' repairs. The oldest go first. Zero fields mean the
// defaults.
type Retention struct {
	// Messages is the most messages kept per session. Default: 10,000
	// (LogLimit), as many as a node always kept in memory for repairs and
	// reading back: a busy day of chat, and what a member that was away a
	// while can still fetch.
	Messages int
	// Bytes is the most bytes of messages kept per session, counted as
	// they are stored (sealed, signed, about 150 bytes beyond the
	// payload). Default: 64 MiB (DefaultHistoryBytes): a thousand messages
	// of the largest size, so that sessions of large messages cannot fill
	// a disk.
	Bytes int64
}

func (r Retention) withDefaults() Retention {
	if r.Messages <= 0 {
		r.Messages = LogLimit
	}
	if r.Bytes <= 0 {
		r.Bytes = DefaultHistoryBytes
	}
	return r
}

// Errors.
var (
	ErrNotFound   = errors.New("sessions: no such session")
	ErrAmbiguous  = errors.New("sessions: more than one session starts so")
	ErrNotHost    = errors.New("sessions: only the session's host can do that")
	ErrIsHost     = errors.New("sessions: the host cannot leave its session; end it instead")
	ErrNotJoined  = errors.New("sessions: this node is not a member of the session (yet)")
	ErrEnded      = errors.New("sessions: the session has ended")
	ErrNoApp      = errors.New("sessions: no application with this ID is registered here")
	ErrNotRunning = errors.New("sessions: the session has not started; the host starts it with `peercollab session start`")
	ErrNoKey      = errors.New("sessions: the session key has not arrived yet; try again in a moment")
	ErrBadApp     = errors.New("sessions: malformed application ID")
)

func checkApp(app string) error {
	if endpoint.CheckID(app) != nil {
		return ErrBadApp
	}
	return nil
}

// Invitations is what the service needs of the node's invitations: to
// send, cancel and accept them, count them, and follow their changes (the
// answers to a hosted session's invitations; an accepted invitation to
// another's session). *invitations.Service is one.
type Invitations interface {
	SendTo(targets []invitations.Target, req invitations.Request) ([]invitations.Record, error)
	Cancel(id string) (invitations.Record, error)
	Accept(id string) (invitations.Record, error)
	List(f invitations.Filter) []invitations.Record
	Subscribe() *invitations.Sub
}

var _ Invitations = (*invitations.Service)(nil)

// Config is what the service is built from.
type Config struct {
	Host   host.Host
	PubSub *pubsub.PubSub
	// State holds the sessions and their progress (the relaxed database).
	State *state.DB
	// Dir holds the sessions' histories, a log file each. Required.
	Dir         string
	Hub         *events.Hub
	Invitations Invitations
	// Sign signs with the node's identity key.
	Sign func([]byte) ([]byte, error)
	// Connect makes sure there is a connection to p. It is called on the
	// service's goroutines, with no lock held.
	Connect func(ctx context.Context, p peer.ID) error
	// App tells whether an application is registered here and whether
	// requests to host sessions for it are accepted without asking. It is
	// called on the session protocol's stream goroutines.
	App func(id string) (registered, autoHost bool)
	// Heartbeat is the host's heartbeat period; 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// Retention bounds each session's history; zero fields mean the
	// defaults.
	Retention Retention
}

// Service runs the sessions. Its methods are safe for concurrent use.
type Service struct {
	cfg   Config
	keep  Retention
	proto *psession.Service
	ctx   context.Context
	stop  context.CancelFunc
	life  life

	// byTopic finds a session by its topic tag without a lock, for
	// pubsub's peer filter: tag -> *sess, while the session is on its topic.
	byTopic sync.Map

	// mu guards the tables; nothing under it waits for the disk, the
	// network or a session's lock.
	mu       sync.Mutex
	sessions map[string]*sess
	requests map[string]*HostRequest
	// asked remembers the host requests this node made (peer and
	// application), so that the invitation that answers one is accepted
	// without asking.
	asked map[askKey]time.Time
}

// life is whether the service still runs, and the goroutines it started.
type life struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// spawn runs f on a goroutine of the service's, unless it was closed; it
// reports whether it did.
func (s *Service) spawn(f func()) bool {
	s.life.mu.Lock()
	defer s.life.mu.Unlock()
	if s.life.closed {
		return false
	}
	s.life.wg.Go(f)
	return true
}

// closed reports whether Close was called.
func (s *Service) closed() bool {
	s.life.mu.Lock()
	defer s.life.mu.Unlock()
	return s.life.closed
}

type askKey struct {
	peer peer.ID
	app  string
}

// askedFor is how long this node waits for the invitation that answers
// its host request.
const askedFor = time.Hour

// newService is a service with nothing loaded and nothing served.
func newService(cfg Config) *Service {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, keep: cfg.Retention.withDefaults(), ctx: ctx, stop: cancel, sessions: map[string]*sess{},
		requests: map[string]*HostRequest{}, asked: map[askKey]time.Time{}}
}

// New loads the stored sessions with their history, follows the
// invitations, resumes the sessions and serves the session protocol. On
// error nothing is left running.
func New(cfg Config) (*Service, error) {
	s := newService(cfg)
	loaded, err := s.load()
	if err != nil {
		s.stop()
		return nil, err
	}
	s.mu.Lock()
	for _, x := range loaded {
		s.sessions[x.id] = x
	}
	s.mu.Unlock()
	// Changes from now on come through the subscription; what happened
	// before (while this node was down, or before the service was there)
	// is read from the list.
	sub := cfg.Invitations.Subscribe()
	s.life.wg.Go(func() { s.follow(sub) })
	s.reconcile()
	for _, x := range loaded {
		x.resume()
	}
	s.proto = psession.New(cfg.Host, handler{s})
	return s, nil
}

// Close stops every session's goroutines and leaves their topics; hosted
// and joined sessions resume at the next New. Idempotent.
func (s *Service) Close() error {
	s.life.mu.Lock()
	if s.life.closed {
		s.life.mu.Unlock()
		return nil
	}
	s.life.closed = true
	s.life.mu.Unlock()
	if s.proto != nil {
		s.proto.Close()
	}
	s.stop()
	s.life.wg.Wait()
	for _, x := range s.all() {
		x.leaveTopic()
		x.mu.Lock()
		x.closeLogLocked()
		x.mu.Unlock()
	}
	return nil
}

// all returns every session.
func (s *Service) all() []*sess {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.sessions))
}

// TopicPeer is pubsub's peer filter for session topics: ours reports
// whether topic is a session topic at all; allowed, whether p may share it
// with this node: p is the host or a member of the session as this node
// knows them. A session topic this node is not on allows no one. It takes
// no lock, and is safe to call on pubsub's goroutine.
func (s *Service) TopicPeer(topic string, p peer.ID) (allowed, ours bool) {
	tag, ok := psession.TopicTag(topic)
	if !ok {
		return false, false
	}
	x, ok := s.byTopic.Load(tag)
	return ok && x.(*sess).allowed(p), true
}

// SharesSession reports whether p is the host or a member, as this node
// knows them, of a session this node is in. It takes no lock.
func (s *Service) SharesSession(p peer.ID) bool {
	found := false
	s.byTopic.Range(func(_, x any) bool {
		found = x.(*sess).allowed(p)
		return !found
	})
	return found
}

// lookup returns the session of exactly this ID.
func (s *Service) lookup(id string) (*sess, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.sessions[id]
	return x, ok
}

// find returns a session by ID or unique prefix (4 characters at least).
func (s *Service) find(id string) (*sess, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x, ok := s.sessions[id]; ok {
		return x, nil
	}
	switch x, n := prefix.Find(maps.All(s.sessions), id); n {
	case 0:
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	case 1:
		return x, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrAmbiguous, id)
}

// View is a session as the API and events show it.
type View struct {
	ID      string        `json:"id"`
	App     string        `json:"application_id"`
	Host    peer.ID       `json:"host"`
	Hosting bool          `json:"hosting"`
	State   session.State `json:"state"`
	Version uint64        `json:"version"`
	Epoch   uint32        `json:"epoch"`
	Members []peer.ID     `json:"members"`
	Joined  bool          `json:"joined"`
	// Me is this node's standing: member, removed, left; invited while
	// it has not joined yet.
	Me session.Standing `json:"me"`
	// Standing is every invited peer's standing (hosted sessions only).
	Standing map[string]session.Standing `json:"standing,omitempty"`
	// Tally counts the session's invitations (hosted sessions only).
	Tally *invitations.Tally `json:"tally,omitempty"`
	// Sent is how many messages this node sent; Received how many it
	// delivered, its own included.
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	Error    string `json:"error,omitempty"`
}

// Get returns a session by ID or unique prefix.
func (s *Service) Get(id string) (View, error) {
	x, err := s.find(id)
	if err != nil {
		return View{}, err
	}
	return s.viewOf(x), nil
}

// viewOf is x's view, with its tally when hosted.
func (s *Service) viewOf(x *sess) View {
	x.mu.Lock()
	v := x.viewLocked()
	x.mu.Unlock()
	if v.Hosting {
		t := invitations.Count(s.cfg.Invitations.List(invitations.Filter{Direction: invitations.Sent, SessionID: v.ID}))
		v.Tally = &t
	}
	return v
}

// List returns every session, hosted and joined, newest state first.
func (s *Service) List() []View {
	all := s.all()
	out := make([]View, 0, len(all))
	for _, x := range all {
		x.mu.Lock()
		out = append(out, x.viewLocked())
		x.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b View) int { return cmp.Or(cmp.Compare(a.State, b.State), cmp.Compare(a.ID, b.ID)) })
	return out
}

// Message is an application message delivered to this node.
type Message struct {
	Session string    `json:"session"`
	Sender  peer.ID   `json:"sender"`
	Seq     uint64    `json:"seq"`
	Data    []byte    `json:"data"`
	Time    time.Time `json:"time"`
	// Index numbers the messages delivered in this session here, from 1,
	// for reading them back with Messages; it carries on across restarts.
	Index uint64 `json:"index"`
}

// Messages returns the messages delivered in a session after index after,
// as many as Retention keeps; the same before and after a restart.
func (s *Service) Messages(id string, after uint64) ([]Message, error) {
	x, err := s.find(id)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.hist.after(after), nil
}
