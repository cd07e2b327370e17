package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/chacha20poly1305"

	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

// sess is one session, hosted or joined. The fields above mu are set when
// it is made and never change; mu guards the rest, but for view, which the
// topic validator and pubsub's peer filter read without it.
type sess struct {
	s       *Service
	id, app string
	host    peer.ID
	hosting bool
	me      peer.ID
	// taken carries the messages the validator took to the reader;
	// keyNeeded the epoch of an envelope whose key this node lacks to the
	// ticker. Both are bounded and never block the validator.
	taken     chan topicMsg
	keyNeeded chan uint32
	view      atomic.Pointer[topicView] // roster and keys, for the validator and the peer filter

	mu sync.Mutex
	h  *session.Host        // hosting only
	p  *session.Participant // joined sessions only
	// roster is the host's current roster (h's, or the latest p holds).
	roster session.Roster
	// tag names the session's topic (psession.Topic); a member learns it
	// when it joins.
	tag  string
	keys map[uint32]psession.Key
	// keyAdded is closed, and replaced, whenever a key is added: Send waits
	// on it for the key of a new epoch.
	keyAdded chan struct{}

	order   *session.Order[*psession.Data]
	log     map[peer.ID]map[uint64]*psession.Data // kept for repairs
	logged  []logEntry                            // in arrival order, to trim
	highest map[peer.ID]uint64                    // highest seq heard of, per sender
	gaps    map[session.Gap]time.Time             // when each gap was first seen
	hist    history                               // what was delivered here
	mySeq   uint64
	// progressStale: the order moved on where the history does not say so
	// (a skip); the progress record goes with the next write.
	progressStale bool

	invitationID string
	err          string
	joining      bool // a join is under way
	leaving      bool // the topic is left in a moment

	topic   *pubsub.Topic
	unrelay pubsub.RelayCancelFunc
	cancel  context.CancelFunc // ends the goroutines of the topic
	out     *outbox            // while on the topic
}

type logEntry struct {
	sender peer.ID
	seq    uint64
}

// topicView is what the topic's validator and the peer filter read of a
// session: a copy, replaced whole at each change.
type topicView struct {
	roster session.Roster
	keys   map[uint32]psession.Key
}

// stored is a session as kept in the database (its progress and history
// apart).
type stored struct {
	ID           string            `json:"id"`
	App          string            `json:"application_id"`
	Host         peer.ID           `json:"host"`
	Hosting      bool              `json:"hosting"`
	Topic        string            `json:"topic,omitempty"`
	HostState    *session.Snapshot `json:"host_state,omitempty"`
	Roster       session.Roster    `json:"roster"`
	Keys         map[uint32][]byte `json:"keys"`
	Me           session.Standing  `json:"me"`
	Joined       bool              `json:"joined"`
	InvitationID string            `json:"invitation_id,omitempty"`
}

func newSess(s *Service, id, app string, host peer.ID, hosting bool) *sess {
	x := &sess{s: s, id: id, app: app, host: host, hosting: hosting, me: s.cfg.Host.ID(),
		taken: make(chan topicMsg, takenCap), keyNeeded: make(chan uint32, 1),
		keys: map[uint32]psession.Key{}, keyAdded: make(chan struct{}),
		order: session.NewOrder[*psession.Data](), log: map[peer.ID]map[uint64]*psession.Data{},
		highest: map[peer.ID]uint64{}, gaps: map[session.Gap]time.Time{}}
	if !hosting {
		x.p = session.NewParticipant(id, host, x.me)
	}
	x.view.Store(&topicView{})
	return x
}

// progress is how far a session has come here: the position reached in
// each sender's messages, the last sequence number used, and how many
// messages were delivered. The history records of the messages sent and
// delivered, written in one write before anyone hears of a message, carry
// it on (see restoreProgress), so that a node killed a moment later neither
// delivers a message twice nor uses a number twice; the progress record
// itself is written only where they cannot: when old records are dropped,
// and after a skip.
type progress struct {
	Positions map[string]uint64 `json:"positions"`
	MySeq     uint64            `json:"my_seq"`
	Index     uint64            `json:"index,omitempty"`
}

// decodeProgress reads a stored progress record.
func decodeProgress(raw []byte) (progress, error) {
	var pr progress
	if err := json.Unmarshal(raw, &pr); err != nil {
		return progress{}, fmt.Errorf("%w: %w", errBadRecord, err)
	}
	if pr.MySeq > psession.MaxSeq {
		return progress{}, errBadRecord
	}
	for _, pos := range pr.Positions {
		if pos == 0 || pos > psession.MaxSeq+1 {
			return progress{}, errBadRecord
		}
	}
	return pr, nil
}

// progressLocked is the session's progress record.
func (x *sess) progressLocked() progress {
	return progress{Positions: session.TextKeys(x.order.Positions()), MySeq: x.mySeq, Index: x.hist.index}
}

// errBadRecord means a stored session record does not hold together.
var errBadRecord = errors.New("sessions: malformed session record")

// decodeStored reads a stored session record and checks that it holds
// together (a damaged or hostile database must not make a node misbehave).
func decodeStored(raw []byte) (stored, error) {
	var st stored
	if err := json.Unmarshal(raw, &st); err != nil {
		return stored{}, fmt.Errorf("%w: %w", errBadRecord, err)
	}
	switch {
	case !psession.ValidTag(st.ID), st.Host.Validate() != nil, checkApp(st.App) != nil,
		st.Topic != "" && !psession.ValidTag(st.Topic):
		return stored{}, errBadRecord
	case st.Hosting && (st.HostState == nil || st.HostState.ID != st.ID || st.HostState.Host != st.Host || st.HostState.App != st.App):
		return stored{}, errBadRecord
	case !st.Hosting && st.HostState != nil:
		return stored{}, errBadRecord
	case st.Roster.Version > 0 && !validRoster(st.Roster, st.ID, st.Host), st.Roster.Version == 0 && len(st.Roster.Members) > 0:
		return stored{}, errBadRecord
	}
	for _, k := range st.Keys {
		if len(k) != chacha20poly1305.KeySize {
			return stored{}, errBadRecord
		}
	}
	return st, nil
}

// restore brings a stored session back, with its progress record (its
// history is loaded apart).
func restore(s *Service, st stored, pr progress) *sess {
	x := newSess(s, st.ID, st.App, st.Host, st.Hosting)
	x.tag = st.Topic
	if st.HostState != nil {
		x.h = session.RestoreHost(*st.HostState)
		if x.tag == "" {
			x.tag = psession.NewTopicTag() // a record from before topic tags
		}
	}
	for e, k := range st.Keys {
		key := psession.Key{Epoch: e}
		copy(key.Secret[:], k)
		x.keys[e] = key
	}
	if !x.hosting {
		x.p = session.RestoreParticipant(st.ID, st.Host, x.me, session.ParticipantState{Roster: st.Roster, Standing: st.Me,
			Joined: st.Joined, Epochs: slices.Collect(maps.Keys(x.keys))})
	}
	x.roster = st.Roster
	x.syncViewLocked()
	for p, pos := range session.PeerKeys(pr.Positions) {
		x.order.Start(p, pos)
		if pos > 1 {
			x.highest[p] = pos - 1 // what the host's heartbeat tells
		}
	}
	x.mySeq, x.invitationID = pr.MySeq, st.InvitationID
	x.hist.index = pr.Index
	return x
}

// standingLocked is this node's standing and whether it has joined.
func (x *sess) standingLocked() (session.Standing, bool) {
	if x.hosting {
		return session.Member, true
	}
	return x.p.Standing(), x.p.Joined()
}

// storedLocked is the session as it is stored.
func (x *sess) storedLocked() stored {
	me, joined := x.standingLocked()
	st := stored{ID: x.id, App: x.app, Host: x.host, Hosting: x.hosting, Topic: x.tag, Roster: x.roster, Keys: map[uint32][]byte{},
		Me: me, Joined: joined, InvitationID: x.invitationID}
	if st.Roster.Host == "" {
		// No roster from the host yet (a member that has not joined): the
		// empty peer ID would be written as "", which does not read back.
		st.Roster.Session, st.Roster.App, st.Roster.Host = x.id, x.app, x.host
	}
	if x.h != nil {
		snap := x.h.Snapshot()
		st.HostState = &snap
	}
	for e, k := range x.keys {
		st.Keys[e] = slices.Clone(k.Secret[:])
	}
	return st
}

// saveLocked stores the session.
func (x *sess) saveLocked() {
	if err := x.s.cfg.State.Put(bucket, x.id, x.storedLocked()); err != nil {
		log.Errorw("store session", "session", x.id, "error", err)
	}
}

// setRosterLocked takes a new roster.
func (x *sess) setRosterLocked(r session.Roster) {
	x.roster = r
	x.syncViewLocked()
}

// addKeyLocked keeps a session key, and wakes whoever waits for one.
func (x *sess) addKeyLocked(k psession.Key) {
	x.keys[k.Epoch] = k
	x.syncViewLocked()
	close(x.keyAdded)
	x.keyAdded = make(chan struct{})
}

// syncViewLocked refreshes what the validator and the peer filter see.
func (x *sess) syncViewLocked() {
	x.view.Store(&topicView{roster: x.roster, keys: maps.Clone(x.keys)})
}

// Host, IsMember, Key and Missing make sess the validator's Membership;
// they take no lock.
func (x *sess) Host() peer.ID { return x.host }

// IsMember reports whether p is in the latest roster this node has.
func (x *sess) IsMember(p peer.ID) bool { return x.view.Load().roster.IsMember(p) }

// Key returns the key of an epoch, when this node holds it.
func (x *sess) Key(epoch uint32) (psession.Key, bool) {
	k, ok := x.view.Load().keys[epoch]
	return k, ok
}

// Missing tells the session's ticker that the key of epoch is missing,
// when epoch is newer than the roster's.
func (x *sess) Missing(epoch uint32) {
	if epoch <= x.view.Load().roster.Epoch {
		return
	}
	select {
	case x.keyNeeded <- epoch:
	default:
	}
}

// allowed reports whether p may share the session's topic with this node:
// the host and the members this node knows of. It takes no lock (pubsub's
// goroutine calls it).
func (x *sess) allowed(p peer.ID) bool { return p == x.host || x.IsMember(p) }

func (x *sess) viewLocked() View {
	me, joined := x.standingLocked()
	v := View{ID: x.id, App: x.app, Host: x.host, Hosting: x.hosting, State: x.roster.State, Version: x.roster.Version,
		Epoch: x.roster.Epoch, Members: slices.Clone(x.roster.Members), Joined: joined, Me: me,
		Sent: x.mySeq, Received: x.hist.index, Error: x.err}
	if x.h != nil {
		v.Standing = session.TextKeys(x.h.Standing())
	}
	return v
}

// changedLocked stores the session and publishes its change.
func (x *sess) changedLocked() {
	x.saveLocked()
	x.s.cfg.Hub.Publish(EvtChanged, x.viewLocked())
}

// resume restarts a session loaded from the database: a host rejoins its
// topic and republishes the roster; a member asks the host to let it back.
func (x *sess) resume() {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.hosting && x.roster.State != session.Ended:
		if err := x.joinTopicLocked(); err != nil {
			x.err = err.Error()
			return
		}
		x.publishLocked(rosterMessage(x.roster))
	case !x.hosting:
		x.applyLocked(x.p.Resume())
	}
}

// takenCap bounds the topic messages waiting for a session's reader;
// beyond it they are dropped (data comes back through repair, a roster
// through a join).
const takenCap = 1024

// topicMsg is a message the validator took off the session's topic.
type topicMsg struct {
	m    *psession.TopicMessage
	from peer.ID
}

// validator is the session topic's validator: psession's, except that what
// it accepts is handed to the session's reader and gossipsub told to
// ignore it, so that gossipsub forwards no session message to anyone. Each
// node sends its own messages, through its allow-list, to the members it
// knows, and the host passes every member's message on: a peer that gets
// into a topic's mesh without being a member (an ex-member some node has
// not yet dropped, a plain floodsub peer) receives nothing through it.
func (x *sess) validator() pubsub.ValidatorEx {
	v := psession.Validator(x.id, x)
	return func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		r := v(ctx, from, msg)
		if r != pubsub.ValidationAccept || from == x.me {
			return r // this node's own publication: let pubsub send it
		}
		select {
		case x.taken <- topicMsg{msg.ValidatorData.(*psession.TopicMessage), msg.GetFrom()}:
		default:
			log.Debugw("session reader is behind; a topic message is dropped", "session", x.id)
		}
		return pubsub.ValidationIgnore
	}
}

// joinTopicLocked joins the session topic and starts the session's
// goroutines (reader; ticker: heartbeat for a host, repair for everyone;
// sender). The node relays the topic rather than subscribing: its messages
// come through the validator (see validator).
func (x *sess) joinTopicLocked() error {
	if x.topic != nil {
		return nil
	}
	if !psession.ValidTag(x.tag) {
		return errNoTopic
	}
	ps, name := x.s.cfg.PubSub, psession.Topic(x.tag)
	if err := ps.RegisterTopicValidator(name, x.validator()); err != nil {
		return err
	}
	t, err := ps.Join(name)
	if err != nil {
		ps.UnregisterTopicValidator(name)
		return err
	}
	unrelay, err := t.Relay()
	if err != nil {
		t.Close()
		ps.UnregisterTopicValidator(name)
		return err
	}
	ctx, cancel := context.WithCancel(x.s.ctx)
	out := newOutbox(ctx, x, t)
	if !x.s.spawn(func() { x.read(ctx) }) || !x.s.spawn(func() { x.tick(ctx) }) || !x.s.spawn(out.run) {
		cancel()
		unrelay()
		t.Close()
		ps.UnregisterTopicValidator(name)
		return errClosed
	}
	x.topic, x.unrelay, x.cancel, x.out = t, unrelay, cancel, out
	x.s.byTopic.Store(x.tag, x)
	return nil
}

// Errors of a session's topic.
var (
	// errNoTopic means a session has no topic tag yet (a member learns it
	// when it joins).
	errNoTopic = errors.New("sessions: the session's topic is not known yet")
	errClosed  = errors.New("sessions: the service is closed")
)

// leaveTopic stops the session's goroutines and leaves its topic.
func (x *sess) leaveTopic() {
	x.mu.Lock()
	t, unrelay, cancel := x.topic, x.unrelay, x.cancel
	x.topic, x.unrelay, x.cancel, x.out = nil, nil, nil, nil
	if t != nil {
		if tag, ok := psession.TopicTag(t.String()); ok {
			x.s.byTopic.CompareAndDelete(tag, x)
		}
	}
	x.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if unrelay != nil {
		unrelay()
	}
	if t != nil {
		t.Close()
		x.s.cfg.PubSub.UnregisterTopicValidator(t.String())
	}
}

// leaveLaterLocked leaves the topic of a finished session after a moment,
// so that what was just published still goes out.
func (x *sess) leaveLaterLocked() {
	if x.leaving {
		return
	}
	x.leaving = true
	x.s.spawn(func() {
		select {
		case <-time.After(2 * time.Second):
		case <-x.s.ctx.Done():
		}
		x.leaveTopic()
		x.mu.Lock()
		x.leaving = false
		x.mu.Unlock()
	})
}
