package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/chacha20poly1305"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/pb"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

// sess is one session, hosted or joined. Its fields are guarded by the
// service's mutex, but for view, which the topic validator and pubsub's
// peer filter read without it.
type sess struct {
	s       *Service
	id, app string
	host    peer.ID
	hosting bool
	h       *session.Host // hosting only
	// tag names the session's topic (psession.Topic); a member learns it
	// when it joins.
	tag string

	roster session.Roster
	view   atomic.Pointer[topicView] // roster and keys, for the validator and the peer filter
	keys   map[uint32]psession.Key
	// keyNeeded tells the session's goroutine that the validator saw an
	// envelope of an epoch whose key this node lacks.
	keyNeeded chan struct{}

	order   *session.Order[*pb.SessionData]
	log     map[peer.ID]map[uint64]*pb.SessionData // kept for repairs
	logged  []logEntry                             // in arrival order, to trim
	highest map[peer.ID]uint64                     // highest seq heard of, per sender
	gaps    map[session.Gap]time.Time              // when each gap was first seen
	inbox   []Message
	index   uint64
	mySeq   uint64

	me           session.Standing
	joined       bool
	joining      bool // a join is under way
	invitationID string
	err          string

	topic   *pubsub.Topic
	unrelay pubsub.RelayCancelFunc
	taken   chan topicMsg // from the validator to the reader
	cancel  context.CancelFunc
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

// stored is a session as kept in the database (its progress apart).
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
	x := &sess{s: s, id: id, app: app, host: host, hosting: hosting, keys: map[uint32]psession.Key{},
		keyNeeded: make(chan struct{}, 1), taken: make(chan topicMsg, takenCap),
		order: session.NewOrder[*pb.SessionData](), log: map[peer.ID]map[uint64]*pb.SessionData{},
		highest: map[peer.ID]uint64{}, gaps: map[session.Gap]time.Time{}, me: session.Invited}
	x.view.Store(&topicView{})
	return x
}

// progress is how far a session has come here: the position reached in
// each sender's messages and the last sequence number used. It is stored
// at every message sent and delivered, before anyone hears of the message,
// so that a node killed a moment later neither delivers a message twice
// nor uses a number twice.
type progress struct {
	Positions map[string]uint64 `json:"positions"`
	MySeq     uint64            `json:"my_seq"`
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
	return progress{Positions: session.TextKeys(x.order.Positions()), MySeq: x.mySeq}
}

// saveProgressLocked stores the session's progress record.
func (x *sess) saveProgressLocked() {
	pr := x.progressLocked()
	if err := x.s.cfg.State.Put(progressBucket, x.id, pr); err != nil {
		log.Errorw("store session progress", "session", x.id, "error", err)
	}
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

// restore brings a stored session back, with its progress record.
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
	x.setRosterLocked(st.Roster)
	for p, pos := range session.PeerKeys(pr.Positions) {
		x.order.Start(p, pos)
	}
	x.mySeq, x.me, x.joined, x.invitationID = pr.MySeq, st.Me, st.Joined, st.InvitationID
	return x
}

// storedLocked is the session as it is stored.
func (x *sess) storedLocked() stored {
	st := stored{ID: x.id, App: x.app, Host: x.host, Hosting: x.hosting, Topic: x.tag, Roster: x.roster, Keys: map[uint32][]byte{},
		Me: x.me, Joined: x.joined, InvitationID: x.invitationID}
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

func (x *sess) setRosterLocked(r session.Roster) {
	x.roster = r
	x.syncViewLocked()
}

// addKeyLocked keeps a session key.
func (x *sess) addKeyLocked(k psession.Key) {
	x.keys[k.Epoch] = k
	x.syncViewLocked()
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

// Missing asks the session's goroutine to fetch the keys when epoch is
// newer than the roster's.
func (x *sess) Missing(epoch uint32) {
	if epoch <= x.view.Load().roster.Epoch {
		return
	}
	select {
	case x.keyNeeded <- struct{}{}:
	default:
	}
}

// allowed reports whether p may share the session's topic with this node:
// the host and the members this node knows of. It takes no lock (pubsub's
// goroutine calls it).
func (x *sess) allowed(p peer.ID) bool { return p == x.host || x.IsMember(p) }

func (x *sess) viewLocked() View {
	v := View{ID: x.id, App: x.app, Host: x.host, Hosting: x.hosting, State: x.roster.State, Version: x.roster.Version,
		Epoch: x.roster.Epoch, Members: slices.Clone(x.roster.Members), Joined: x.joined, Me: x.me,
		Sent: x.mySeq, Received: x.index, Error: x.err}
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
	s := x.s
	s.mu.Lock()
	switch {
	case x.roster.State == session.Ended:
		s.mu.Unlock()
	case x.hosting:
		err := x.joinTopicLocked()
		if err != nil {
			x.err = err.Error()
		}
		r := x.roster
		s.mu.Unlock()
		if err == nil {
			s.goPublish(x, rosterMessage(r))
		}
	case x.me == session.Invited || x.me == session.Member:
		s.mu.Unlock()
		s.goJoin(x)
	default:
		s.mu.Unlock()
	}
}

// takenCap bounds the topic messages waiting for a session's reader;
// beyond it they are dropped (data comes back through repair, a roster
// through a join).
const takenCap = 1024

// topicMsg is a message the validator took off the session's topic.
type topicMsg struct {
	m    *pb.SessionTopicMessage
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
		if r != pubsub.ValidationAccept || from == x.s.cfg.Host.ID() {
			return r // this node's own publication: let pubsub send it
		}
		select {
		case x.taken <- topicMsg{msg.ValidatorData.(*pb.SessionTopicMessage), msg.GetFrom()}:
		default:
			log.Debugw("session reader is behind; a topic message is dropped", "session", x.id)
		}
		return pubsub.ValidationIgnore
	}
}

// joinTopicLocked joins the session topic and starts the session's
// goroutines (reader; heartbeat for a host; repair for everyone). The node
// relays the topic rather than subscribing: its messages come through the
// validator (see validator).
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
	x.topic, x.unrelay = t, unrelay
	x.s.byTopic.Store(x.tag, x)
	ctx, cancel := context.WithCancel(x.s.ctx)
	x.cancel = cancel
	x.s.wg.Go(func() { x.s.read(ctx, x) })
	x.s.wg.Go(func() { x.s.tick(ctx, x) })
	return nil
}

// errNoTopic means a session has no topic tag yet (a member learns it when
// it joins).
var errNoTopic = errors.New("sessions: the session's topic is not known yet")

// leaveTopic stops the session's goroutines and leaves its topic.
func (x *sess) leaveTopic() {
	x.s.mu.Lock()
	t, unrelay, cancel := x.topic, x.unrelay, x.cancel
	x.topic, x.unrelay, x.cancel = nil, nil, nil
	if t != nil {
		if tag, ok := psession.TopicTag(t.String()); ok {
			x.s.byTopic.CompareAndDelete(tag, x)
		}
	}
	x.s.mu.Unlock()
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

// keepLocked adds a message to the repair log, trimming the oldest; it
// reports whether the message was new.
func (x *sess) keepLocked(d *pb.SessionData) bool {
	sender := peer.ID(d.Sender)
	if x.log[sender] == nil {
		x.log[sender] = map[uint64]*pb.SessionData{}
	}
	if _, ok := x.log[sender][d.Seq]; ok {
		return false
	}
	x.log[sender][d.Seq] = d
	x.logged = append(x.logged, logEntry{sender, d.Seq})
	if d.Seq > x.highest[sender] {
		x.highest[sender] = d.Seq
	}
	for len(x.logged) > LogLimit {
		old := x.logged[0]
		x.logged = x.logged[1:]
		delete(x.log[old.sender], old.seq)
	}
	return true
}

// deliverLocked opens messages in order and hands them to the
// application, storing the progress first.
func (x *sess) deliverLocked(ds []*pb.SessionData) {
	var out []Message
	for _, d := range ds {
		payload, err := psession.Open(x.keys[d.Epoch], d)
		if err != nil {
			log.Debugw("message cannot be opened", "session", x.id, "error", err)
			continue
		}
		x.index++
		m := Message{Session: x.id, Sender: peer.ID(d.Sender), Seq: d.Seq, Data: payload, Time: time.Now().UTC(), Index: x.index}
		x.inbox = append(x.inbox, m)
		if len(x.inbox) > LogLimit {
			x.inbox = slices.Delete(x.inbox, 0, len(x.inbox)-LogLimit)
		}
		out = append(out, m)
	}
	if len(ds) > 0 {
		x.saveProgressLocked()
	}
	for _, m := range out {
		x.s.cfg.Hub.Publish(EvtMessage, m)
	}
}

// receiveLocked takes a data message from any path (topic, fetch, post):
// keeps it for repairs and delivers what is now in order. A message of an
// epoch this node has no key for waits in the log until the key comes (see
// replayLocked); receiveLocked then reports that a key must be fetched.
// fresh says whether the message was new here.
func (x *sess) receiveLocked(d *pb.SessionData) (needKey, fresh bool) {
	fresh = x.keepLocked(d)
	sender := peer.ID(d.Sender)
	if _, ok := x.keys[d.Epoch]; !ok {
		x.order.Saw(sender, d.Seq)
		return true, fresh
	}
	x.deliverLocked(x.order.Add(sender, d.Seq, d))
	return false, fresh
}

// replayLocked delivers the logged messages that were waiting for a key.
func (x *sess) replayLocked() {
	for sender, msgs := range x.log {
		for {
			d, ok := msgs[x.order.Next(sender)]
			if !ok {
				break
			}
			if _, have := x.keys[d.Epoch]; !have {
				break
			}
			x.deliverLocked(x.order.Add(sender, d.Seq, d))
		}
	}
}

func rosterMessage(r session.Roster) *pb.SessionTopicMessage {
	return &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Roster{Roster: psession.RosterToPB(r.Session, r.App, r.Host,
		pb.SessionRoster_State(r.State), r.Version, r.Epoch, r.Members)}}
}

// errBadRoster means a roster from the host does not hold together.
var errBadRoster = errors.New("sessions: malformed roster")

// rosterFromPB reads a roster of session id, hosted by host, and checks it:
// the host first among distinct members, a known state, an epoch and a
// version.
func rosterFromPB(m *pb.SessionRoster, id string, host peer.ID) (session.Roster, error) {
	members, err := psession.Members(m)
	if m == nil || err != nil {
		return session.Roster{}, errBadRoster
	}
	r := session.Roster{Session: m.GetSessionId(), App: m.GetApplicationId(), Host: peer.ID(m.GetHost()), State: session.State(m.GetState()),
		Version: m.GetVersion(), Epoch: m.GetEpoch(), Members: members}
	if !validRoster(r, id, host) {
		return session.Roster{}, errBadRoster
	}
	return r, nil
}

// validRoster reports whether r is a roster of session id hosted by host:
// a version, an epoch and a known state, a well-formed application ID, the
// host first among distinct members.
func validRoster(r session.Roster, id string, host peer.ID) bool {
	if r.Session != id || r.Host != host || r.Version == 0 || r.Epoch == 0 || r.State < session.Forming || r.State > session.Ended ||
		checkApp(r.App) != nil || len(r.Members) == 0 || r.Members[0] != host {
		return false
	}
	seen := make(map[peer.ID]bool, len(r.Members))
	for _, p := range r.Members {
		if seen[p] {
			return false
		}
		seen[p] = true
	}
	return true
}

// currentKeys are the keys handed to a member: the current epoch's and
// the one before, for messages still in flight.
func (x *sess) currentKeysLocked() []*pb.SessionKey {
	var out []*pb.SessionKey
	for _, e := range []uint32{x.roster.Epoch, x.roster.Epoch - 1} {
		if k, ok := x.keys[e]; ok {
			out = append(out, psession.KeyToPB(k))
		}
	}
	return out
}

func (x *sess) heartbeatLocked() *pb.SessionTopicMessage {
	hb := &pb.SessionHeartbeat{SessionId: x.id, Version: x.roster.Version, Highest: map[string]uint64{}}
	for p, seq := range x.highest {
		hb.Highest[p.String()] = seq
	}
	return &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Heartbeat{Heartbeat: hb}}
}

func marshal(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	return b
}
