package sessions

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/pb"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// sess is one session, hosted or joined. Its fields are guarded by the
// service's mutex, but for members, read by the topic validator without it.
type sess struct {
	s       *Service
	id, app string
	host    peer.ID
	hosting bool
	h       *session.Host // hosting only

	roster  session.Roster
	members atomic.Pointer[session.Roster] // for the validator
	keys    map[uint32]psession.Key
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

	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	cancel context.CancelFunc
}

type logEntry struct {
	sender peer.ID
	seq    uint64
}

// stored is a session as kept in the database (its progress apart).
type stored struct {
	ID           string            `json:"id"`
	App          string            `json:"application_id"`
	Host         peer.ID           `json:"host"`
	Hosting      bool              `json:"hosting"`
	HostState    *session.Snapshot `json:"host_state,omitempty"`
	Roster       session.Roster    `json:"roster"`
	Keys         map[uint32][]byte `json:"keys"`
	Me           session.Standing  `json:"me"`
	Joined       bool              `json:"joined"`
	InvitationID string            `json:"invitation_id,omitempty"`
}

func newSess(s *Service, id, app string, host peer.ID, hosting bool) *sess {
	return &sess{s: s, id: id, app: app, host: host, hosting: hosting, keys: map[uint32]psession.Key{},
		order: session.NewOrder[*pb.SessionData](), log: map[peer.ID]map[uint64]*pb.SessionData{},
		highest: map[peer.ID]uint64{}, gaps: map[session.Gap]time.Time{}, me: session.Invited}
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

// saveProgressLocked stores the session's progress record.
func (x *sess) saveProgressLocked() {
	pr := progress{Positions: session.TextKeys(x.order.Positions()), MySeq: x.mySeq}
	if err := x.s.cfg.State.Put(progressBucket, x.id, pr); err != nil {
		log.Errorw("store session progress", "session", x.id, "error", err)
	}
}

// restore brings a stored session back, with its progress record.
func restore(s *Service, st stored, pr progress) (*sess, error) {
	x := newSess(s, st.ID, st.App, st.Host, st.Hosting)
	if st.HostState != nil {
		x.h = session.RestoreHost(*st.HostState)
	}
	x.setRosterLocked(st.Roster)
	for e, k := range st.Keys {
		key := psession.Key{Epoch: e}
		copy(key.Secret[:], k)
		x.keys[e] = key
	}
	for p, pos := range session.PeerKeys(pr.Positions) {
		x.order.Start(p, pos)
	}
	x.mySeq, x.me, x.joined, x.invitationID = pr.MySeq, st.Me, st.Joined, st.InvitationID
	return x, nil
}

// saveLocked stores the session.
func (x *sess) saveLocked() {
	st := stored{ID: x.id, App: x.app, Host: x.host, Hosting: x.hosting, Roster: x.roster, Keys: map[uint32][]byte{},
		Me: x.me, Joined: x.joined, InvitationID: x.invitationID}
	if x.h != nil {
		snap := x.h.Snapshot()
		st.HostState = &snap
	}
	for e, k := range x.keys {
		st.Keys[e] = slices.Clone(k.Secret[:])
	}
	if err := x.s.cfg.State.Put(bucket, x.id, st); err != nil {
		log.Errorw("store session", "session", x.id, "error", err)
	}
}

func (x *sess) setRosterLocked(r session.Roster) {
	x.roster = r
	x.members.Store(&r)
}

// Host and IsMember make sess the validator's Membership.
func (x *sess) Host() peer.ID { return x.host }

// IsMember reports whether p is in the latest roster this node has.
func (x *sess) IsMember(p peer.ID) bool {
	r := x.members.Load()
	return r != nil && r.IsMember(p)
}

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

// joinTopicLocked joins the session topic and starts the session's
// goroutines (reader; heartbeat for a host; repair for everyone).
func (x *sess) joinTopicLocked() error {
	if x.topic != nil {
		return nil
	}
	ps, name := x.s.cfg.PubSub, psession.Topic(x.id)
	if err := ps.RegisterTopicValidator(name, psession.Validator(x)); err != nil {
		return err
	}
	t, err := ps.Join(name)
	if err != nil {
		ps.UnregisterTopicValidator(name)
		return err
	}
	sub, err := t.Subscribe()
	if err != nil {
		t.Close()
		ps.UnregisterTopicValidator(name)
		return err
	}
	x.topic, x.sub = t, sub
	ctx, cancel := context.WithCancel(x.s.ctx)
	x.cancel = cancel
	x.s.wg.Go(func() { x.s.read(ctx, x, sub) })
	x.s.wg.Go(func() { x.s.tick(ctx, x) })
	return nil
}

// leaveTopic stops the session's goroutines and leaves its topic.
func (x *sess) leaveTopic() {
	x.s.mu.Lock()
	t, sub, cancel := x.topic, x.sub, x.cancel
	x.topic, x.sub, x.cancel = nil, nil, nil
	x.s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if sub != nil {
		sub.Cancel()
	}
	if t != nil {
		t.Close()
		x.s.cfg.PubSub.UnregisterTopicValidator(psession.Topic(x.id))
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

func rosterFromPB(m *pb.SessionRoster) (session.Roster, error) {
	members, err := psession.Members(m)
	if err != nil {
		return session.Roster{}, err
	}
	host, err := peer.IDFromBytes(m.GetHost())
	if err != nil {
		return session.Roster{}, err
	}
	return session.Roster{Session: m.GetSessionId(), App: m.GetApplicationId(), Host: host, State: session.State(m.GetState()),
		Version: m.GetVersion(), Epoch: m.GetEpoch(), Members: members}, nil
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
