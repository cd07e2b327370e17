// Package sessions runs a node's collaboration sessions, hosted and joined:
// the host's state machine (package session) fed by the answers to its
// invitations, the session topic with its roster, heartbeats and sealed,
// signed messages (protocols/session), and reliable delivery: each sender's
// messages reach the application in order, and gaps (gossipsub loses
// messages right after a mesh forms) are repaired over the session stream
// protocol, from the host's log, the sender's, or another member's.
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
// What is kept durably (the relaxed invitations database): a hosted
// session's state and keys; a joined session's roster, keys, the position
// reached in each sender's messages and the node's own message count. A
// member that restarts catches up from the host's log, which holds the last
// LogLimit messages of each session since the host started (a host that
// restarts keeps its sessions but not their messages: members still repair
// from each other's logs).
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
	// LogLimit is how many messages per session a node keeps for others'
	// repairs and for the application to read back.
	LogLimit = 10000
	// repairEvery is how often a member asks for what is missing.
	repairEvery = 300 * time.Millisecond
	// giveUpAfter is how long a gap may stay open before the missing
	// messages are declared lost.
	giveUpAfter = time.Minute
	bucket      = "sessions"
	// progressBucket holds each session's progress record, written at
	// every message sent and delivered (small, unlike the session's own).
	progressBucket = "session-progress"
)

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

// Config is what the service needs from its node.
type Config struct {
	Host        host.Host
	PubSub      *pubsub.PubSub
	State       *state.DB
	Hub         *events.Hub
	Invitations *invitations.Service
	// Sign signs with the node's identity key.
	Sign func([]byte) ([]byte, error)
	// Connect makes sure there is a connection to p.
	Connect func(ctx context.Context, p peer.ID) error
	// App tells whether an application is registered here and whether
	// requests to host sessions for it are accepted without asking.
	App func(id string) (registered, autoHost bool)
	// Heartbeat is the host's heartbeat period; 0 means DefaultHeartbeat.
	Heartbeat time.Duration
}

// Service runs the sessions. Its methods are safe for concurrent use.
type Service struct {
	cfg   Config
	proto *psession.Service
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	// byTopic finds a session by its topic tag without the lock, for
	// pubsub's peer filter: tag -> *sess, while the session is on its topic.
	byTopic sync.Map

	mu       sync.Mutex
	sessions map[string]*sess
	requests map[string]*HostRequest
	// asked remembers the host requests this node made (peer and
	// application), so that the invitation that answers one is accepted
	// without asking.
	asked  map[askKey]time.Time
	closed bool
}

type askKey struct {
	peer peer.ID
	app  string
}

// askedFor is how long this node waits for the invitation that answers
// its host request.
const askedFor = time.Hour

// New loads the stored sessions, resumes them and serves the session
// protocol. Call Changed with every invitation change (see
// invitations.Config.Changed).
func New(cfg Config) (*Service, error) {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, ctx: ctx, stop: cancel, sessions: map[string]*sess{}, requests: map[string]*HostRequest{}, asked: map[askKey]time.Time{}}
	// A record that cannot be read is left out (and said so), not allowed
	// to keep the node from starting.
	var loaded []stored
	err := cfg.State.ForEach(bucket, func(key string, raw []byte) error {
		st, err := decodeStored(raw)
		if err != nil || st.ID != key {
			log.Errorw("a stored session cannot be read; it is left out", "session", key, "error", err)
			return nil
		}
		loaded = append(loaded, st)
		return nil
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("load sessions: %w", err)
	}
	progresses := map[string]progress{}
	err = cfg.State.ForEach(progressBucket, func(id string, raw []byte) error {
		pr, err := decodeProgress(raw)
		if err != nil {
			log.Errorw("a session's stored progress cannot be read; it starts over", "session", id, "error", err)
			return nil
		}
		progresses[id] = pr
		return nil
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("load session progress: %w", err)
	}
	s.proto = psession.Serve(cfg.Host, handler{s})
	var resume []*sess
	s.mu.Lock()
	for _, st := range loaded {
		x := restore(s, st, progresses[st.ID])
		s.sessions[x.id] = x
		resume = append(resume, x)
	}
	s.mu.Unlock()
	for _, x := range resume {
		x.resume()
	}
	return s, nil
}

// Close stops every session's goroutines and leaves their topics; hosted
// and joined sessions resume at the next New. Idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	all := make([]*sess, 0, len(s.sessions))
	for _, x := range s.sessions {
		all = append(all, x)
	}
	s.mu.Unlock()
	s.proto.Close()
	s.stop()
	s.wg.Wait()
	for _, x := range all {
		x.leaveTopic()
	}
	return nil
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

// find returns a session by ID or unique prefix (4 characters at least).
func (s *Service) findLocked(id string) (*sess, error) {
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
	s.mu.Lock()
	x, err := s.findLocked(id)
	if err != nil {
		s.mu.Unlock()
		return View{}, err
	}
	v := x.viewLocked()
	s.mu.Unlock()
	if v.Hosting {
		t := invitations.Count(s.cfg.Invitations.List(invitations.Filter{Direction: invitations.Sent, SessionID: v.ID}))
		v.Tally = &t
	}
	return v, nil
}

// List returns every session, hosted and joined, newest state first.
func (s *Service) List() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]View, 0, len(s.sessions))
	for _, x := range s.sessions {
		out = append(out, x.viewLocked())
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
	// for reading them back with Messages.
	Index uint64 `json:"index"`
}

// Messages returns the messages delivered in a session after index after
// (at most LogLimit are kept).
func (s *Service) Messages(id string, after uint64) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.findLocked(id)
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearchFunc(x.inbox, after+1, func(m Message, idx uint64) int { return cmp.Compare(m.Index, idx) })
	return slices.Clone(x.inbox[i:]), nil
}
