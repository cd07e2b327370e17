package sessions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/protocols/pb"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

const (
	fuzzSID = "0123456789abcdef0123456789abcdef"
	fuzzTag = "fedcba9876543210fedcba9876543210"
	fuzzApp = "chat"
)

// rig is a node's session service (on me) and a hostile peer (other) that
// hosts the session and answers the session protocol with whatever it is
// told to; m2 is another member, a key only.
type rig struct {
	me, other host.Host
	otherKey  crypto.PrivKey
	m2Key     crypto.PrivKey
	m2        peer.ID
	ps        *pubsub.PubSub
	db        *state.DB
	hub       *events.Hub
	dir       string // the histories

	mu     sync.Mutex
	answer []byte
}

func newRig(f testing.TB) *rig {
	f.Helper()
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mn.Close() })
	r := &rig{me: mn.Hosts()[0], other: mn.Hosts()[1], hub: events.NewHub(), dir: f.TempDir()}
	r.otherKey = r.other.Peerstore().PrivKey(r.other.ID())
	r.m2Key, _, _ = crypto.GenerateEd25519Key(rand.Reader)
	r.m2, _ = peer.IDFromPrivateKey(r.m2Key)
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	if r.ps, err = pubsub.NewGossipSub(ctx, r.me); err != nil {
		f.Fatal(err)
	}
	if r.db, err = state.Open(filepath.Join(f.TempDir(), "state.db"), state.Options{Relaxed: true}); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.db.Close() })
	r.other.SetStreamHandler(psession.ID, func(s network.Stream) {
		s.SetDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, io.LimitReader(s, psession.MaxRequestSize)) // the requester closes its side
		r.mu.Lock()
		b := r.answer
		r.mu.Unlock()
		s.Write(b)
		s.Close()
	})
	return r
}

func (r *rig) setAnswer(b []byte) {
	r.mu.Lock()
	r.answer = b
	r.mu.Unlock()
}

func (r *rig) config(db *state.DB) Config {
	return Config{Host: r.me, PubSub: r.ps, State: db, Dir: r.dir, Hub: r.hub, Sign: r.me.Peerstore().PrivKey(r.me.ID()).Sign,
		Invitations: &fakeInvitations{}, Connect: func(context.Context, peer.ID) error { return nil },
		App: func(string) (bool, bool) { return true, false }, Heartbeat: time.Hour}
}

// service is a session service on me that serves nothing (the fuzz
// targets call it directly).
func (r *rig) service() *Service { return newService(r.config(r.db)) }

// stop ends what the service started and leaves its topics.
func (r *rig) stop(s *Service) {
	s.life.mu.Lock()
	s.life.closed = true
	s.life.mu.Unlock()
	s.stop()
	s.life.wg.Wait()
	for _, x := range s.all() {
		x.leaveTopic()
	}
}

// member makes me a joined member of other's session, at roster version 2,
// epoch 1, with m2.
func (r *rig) member(s *Service, key psession.Key) *sess {
	x := newSess(s, fuzzSID, fuzzApp, r.other.ID(), false)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.tag = fuzzTag
	x.addKeyLocked(key)
	roster := session.Roster{Session: fuzzSID, App: fuzzApp, Host: r.other.ID(), State: session.Running, Version: 2, Epoch: 1,
		Members: []peer.ID{r.other.ID(), r.me.ID(), r.m2}}
	x.p = session.RestoreParticipant(fuzzSID, r.other.ID(), r.me.ID(), session.ParticipantState{Roster: roster, Standing: session.Member,
		Joined: true, Epochs: []uint32{1}})
	x.setRosterLocked(roster)
	s.mu.Lock()
	s.sessions[x.id] = x
	s.mu.Unlock()
	return x
}

func delimited(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	return append(protowire.AppendVarint(nil, uint64(len(b))), b...)
}

// checkRoster fails t unless x's roster holds together: this session, its
// host first, no member twice.
func checkRoster(t *testing.T, x *sess) {
	t.Helper()
	r := x.roster
	if r.Version == 0 {
		return
	}
	if r.Session != x.id || r.Host != x.host || len(r.Members) == 0 || r.Members[0] != x.host {
		t.Fatalf("roster %+v", r)
	}
	seen := map[peer.ID]bool{}
	for _, p := range r.Members {
		if seen[p] {
			t.Fatalf("roster %+v names %s twice", r, p)
		}
		seen[p] = true
	}
}

// FuzzTopic: whatever reaches a member on its session's topic, sealed
// with the session key (plain is the topic message before sealing) or not
// (plain is the envelope), from the host, another member or an outsider,
// goes through the node's validator and, if taken, is applied: a roster
// replaces the member's only when the host sent it and it holds together,
// a heartbeat's numbers cost the member nothing however large, and
// gossipsub is never told to pass anything on.
func FuzzTopic(f *testing.F) {
	r := newRig(f)
	key := psession.NewKey(1)
	add := func(tm *pb.SessionTopicMessage) {
		b, _ := proto.Marshal(tm)
		for who := range byte(3) {
			f.Add(b, true, who)
		}
	}
	roster := func(version uint64, epoch uint32, members ...peer.ID) *pb.SessionTopicMessage {
		return &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Roster{Roster: rosterPB(fuzzSID, fuzzApp, r.other.ID(),
			pb.SessionRoster_RUNNING, version, epoch, members)}}
	}
	add(roster(3, 1, r.other.ID(), r.me.ID(), r.m2))
	add(roster(3, 2, r.other.ID(), r.me.ID()))
	add(roster(4, 1, r.other.ID()))
	add(roster(5, 1, r.me.ID(), r.other.ID()))
	add(roster(6, 1, r.other.ID(), r.me.ID(), r.me.ID()))
	add(&pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Heartbeat{Heartbeat: &pb.SessionHeartbeat{SessionId: fuzzSID, Version: 2,
		Highest: map[string]uint64{r.m2.String(): 1<<64 - 1, r.other.ID().String(): 3}}}})
	for _, seq := range []uint64{1, 2, psession.MaxSeq} {
		d, _ := psession.Seal(fuzzSID, r.m2Key.Sign, r.m2, seq, key, []byte("hi"))
		add(&pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Data{Data: dataPB(d)}})
	}
	f.Add([]byte{0x08, 0x01, 0x12, 0x03, 0x01, 0x02, 0x03}, false, byte(0))
	f.Fuzz(func(t *testing.T, plain []byte, sealed bool, who byte) {
		from := []peer.ID{r.other.ID(), r.m2, "an outsider"}[int(who)%3]
		data := plain
		if sealed {
			var err error
			if data, err = psession.SealEnvelope(fuzzSID, key, plain); err != nil {
				return
			}
		}
		s := r.service()
		defer r.stop(s)
		x := r.member(s, key)
		before := x.roster
		msg := &pubsub.Message{Message: &pubsub_pb.Message{From: []byte(from), Data: data}, ReceivedFrom: from}
		switch res := x.validator()(context.Background(), from, msg); res {
		case pubsub.ValidationIgnore, pubsub.ValidationReject:
		default:
			t.Fatalf("validator said %v: gossipsub would pass the message on", res)
		}
		select {
		case m := <-x.taken:
			x.handleTopic(*m.m, m.from)
		default:
		}
		x.mu.Lock()
		defer x.mu.Unlock()
		checkRoster(t, x)
		if x.roster.Version != before.Version && from != r.other.ID() {
			t.Fatalf("a roster from %s was taken", from)
		}
		for _, g := range x.order.Gaps() {
			if g.From == 0 || g.From > g.To {
				t.Fatalf("gap %+v", g)
			}
		}
	})
}

// joinSeeds are answers a host might give to a join.
func joinSeeds(r *rig, key psession.Key) [][]byte {
	ok := &pb.SessionResponse{Status: pb.SessionResponse_OK, TopicTag: fuzzTag, Keys: []*pb.SessionKey{{Epoch: key.Epoch, Key: key.Secret[:]}},
		Roster: rosterPB(fuzzSID, fuzzApp, r.other.ID(), pb.SessionRoster_RUNNING, 3, 1, []peer.ID{r.other.ID(), r.me.ID()})}
	notMe := proto.Clone(ok).(*pb.SessionResponse)
	notMe.Roster.Members = notMe.Roster.Members[:1]
	noTag := proto.Clone(ok).(*pb.SessionResponse)
	noTag.TopicTag = ""
	future := proto.Clone(ok).(*pb.SessionResponse)
	future.Keys[0].Epoch = 9
	other := proto.Clone(ok).(*pb.SessionResponse)
	other.Roster.SessionId = fuzzTag
	return [][]byte{delimited(ok), delimited(notMe), delimited(noTag), delimited(future), delimited(other),
		delimited(&pb.SessionResponse{Status: pb.SessionResponse_NOT_MEMBER}),
		delimited(&pb.SessionResponse{Status: pb.SessionResponse_ENDED, Roster: ok.Roster}),
		delimited(&pb.SessionResponse{Status: pb.SessionResponse_UNKNOWN}),
		delimited(&pb.SessionResponse{Status: 77}),
		{0x80, 0x80, 0x80, 0x80, 0x01}, {}}
}

// FuzzJoinAnswer: a hostile host answers a member's join with anything.
// The member ends up joined with a roster that holds together and names
// it, a valid topic tag and keys of epochs the roster knows; or refused;
// or not joined, to try again. It never panics or hangs.
func FuzzJoinAnswer(f *testing.F) {
	r := newRig(f)
	for _, seed := range joinSeeds(r, psession.NewKey(1)) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		r.setAnswer(answer)
		s := r.service()
		defer r.stop(s)
		x := newSess(s, fuzzSID, fuzzApp, r.other.ID(), false)
		x.invitationID = fuzzTag
		s.mu.Lock()
		s.sessions[x.id] = x
		s.mu.Unlock()
		done, err := x.join(context.Background())
		x.mu.Lock()
		defer x.mu.Unlock()
		checkRoster(t, x)
		switch {
		case x.p.Joined():
			if !done || err != nil || !x.roster.IsMember(r.me.ID()) || !psession.ValidTag(x.tag) || x.topic == nil || x.p.Standing() != session.Member {
				t.Fatalf("joined: done %v, %v, roster %+v, tag %q, me %s", done, err, x.roster, x.tag, x.p.Standing())
			}
			for e := range x.keys {
				if e == 0 || e > x.roster.Epoch {
					t.Fatalf("a key of epoch %d at roster epoch %d", e, x.roster.Epoch)
				}
			}
		case done:
			if x.p.Standing() != session.Cancelled && x.roster.State != session.Ended {
				t.Fatalf("done without joining: me %s, roster %+v", x.p.Standing(), x.roster)
			}
		default:
			if err == nil || len(x.keys) != 0 || x.topic != nil {
				t.Fatalf("not done, but %v, %d keys, topic %v", err, len(x.keys), x.topic)
			}
		}
	})
}

// FuzzFetchAnswer: a hostile member answers a fetch (gap repair) with
// anything. The member keeps only well-formed messages of the sender it
// asked about, in the range it asked for, that the sender signed.
func FuzzFetchAnswer(f *testing.F) {
	r := newRig(f)
	key := psession.NewKey(1)
	var msgs []*pb.SessionData
	for _, seq := range []uint64{1, 2, 3, 5, 9, psession.MaxSeq} {
		d, _ := psession.Seal(fuzzSID, r.m2Key.Sign, r.m2, seq, key, []byte("hi"))
		msgs = append(msgs, dataPB(d))
	}
	forged, _ := psession.Seal(fuzzSID, r.otherKey.Sign, r.m2, 4, key, []byte("forged"))
	own, _ := psession.Seal(fuzzSID, r.otherKey.Sign, r.other.ID(), 1, key, []byte("other sender"))
	f.Add(delimited(&pb.SessionResponse{Messages: msgs[:3]}))
	f.Add(delimited(&pb.SessionResponse{Messages: msgs}))
	f.Add(delimited(&pb.SessionResponse{Messages: []*pb.SessionData{dataPB(forged), dataPB(own), msgs[0], msgs[0]}}))
	f.Add(delimited(&pb.SessionResponse{Status: pb.SessionResponse_UNKNOWN, Messages: msgs}))
	f.Add([]byte{0x02, 0x22, 0x00})
	f.Fuzz(func(t *testing.T, answer []byte) {
		r.setAnswer(answer)
		s := r.service()
		defer r.stop(s)
		x := r.member(s, key)
		g := session.Gap{Sender: r.m2, From: 1, To: 5}
		x.fetch(context.Background(), r.other.ID(), g)
		x.mu.Lock()
		defer x.mu.Unlock()
		for sender, kept := range x.log {
			for seq, d := range kept {
				if sender != r.m2 || seq < g.From || seq > g.To || d.Seq != seq || psession.CheckData(fuzzSID, d) != nil || psession.Verify(d) != nil {
					t.Fatalf("kept %+v as %s's %d", d, sender, seq)
				}
			}
		}
		for _, m := range x.hist.after(0) {
			if m.Sender != r.m2 || string(m.Data) != "hi" {
				t.Fatalf("delivered %+v", m)
			}
		}
	})
}

// recordSeeds are stored sessions and progress records, sound and not.
func recordSeeds(r *rig) [][2][]byte {
	me, other := r.me.ID(), r.other.ID()
	key := psession.NewKey(1)
	hostRec := `{"id":"` + fuzzSID + `","application_id":"chat","host":"` + me.String() + `","hosting":true,"topic":"` + fuzzTag + `",
"host_state":{"id":"` + fuzzSID + `","application_id":"chat","host":"` + me.String() + `","state":"running","version":3,"epoch":1,
"standing":{"` + me.String() + `":"member","` + other.String() + `":"member"}},
"roster":{"session":"` + fuzzSID + `","application_id":"chat","host":"` + me.String() + `","state":"running","version":3,"epoch":1,"members":["` + me.String() + `","` + other.String() + `"]},
"keys":{"1":"` + encodeKey(key) + `"},"me":"member","joined":true}`
	memberRec := `{"id":"` + fuzzSID + `","application_id":"chat","host":"` + other.String() + `","hosting":false,
"roster":{"session":"` + fuzzSID + `","application_id":"chat","host":"` + other.String() + `","state":"running","version":3,"epoch":1,"members":["` + other.String() + `","` + me.String() + `"]},
"keys":{"1":"` + encodeKey(key) + `"},"me":"member","joined":true,"invitation_id":"x"}`
	progress := `{"positions":{"` + other.String() + `":4},"my_seq":2}`
	twice := strings.Replace(memberRec, `"`+me.String()+`"]`, `"`+me.String()+`","`+me.String()+`"]`, 1)
	return [][2][]byte{
		{[]byte(twice), []byte(progress)},
		{[]byte(hostRec), []byte(progress)},
		{[]byte(memberRec), []byte(progress)},
		{[]byte(`{"id":"` + fuzzSID + `","hosting":true}`), []byte(`{"my_seq":18446744073709551615}`)},
		{[]byte(`{"id":"` + fuzzSID + `","keys":{"1":"AAAA"}}`), []byte(`{"positions":{"x":0}}`)},
		{[]byte(`{"id":"` + fuzzSID + `","application_id":"chat","host":"` + other.String() + `","roster":{"state":"nonsense"}}`), []byte(`{}`)},
		{[]byte(`not json`), []byte(`[]`)},
	}
}

// FuzzSessionRecord: a stored session and its progress, as read back from
// disk. What decodes restores to a session that holds together (its roster
// that of its session and host), and what that session stores, decodes
// again.
func FuzzSessionRecord(f *testing.F) {
	r := newRig(f)
	for _, seed := range recordSeeds(r) {
		f.Add(seed[0], seed[1])
	}
	s := r.service()
	f.Cleanup(func() { r.stop(s) })
	f.Fuzz(func(t *testing.T, rec, prog []byte) {
		st, err := decodeStored(rec)
		if err != nil {
			return
		}
		pr, err := decodeProgress(prog)
		if err != nil {
			pr = progress{}
		}
		x := restore(s, st, pr)
		x.mu.Lock()
		defer x.mu.Unlock()
		checkRoster(t, x)
		if x.hosting && (x.h == nil || !psession.ValidTag(x.tag)) {
			t.Fatalf("a hosted session without its state or topic: %+v", st)
		}
		x.viewLocked()
		x.currentKeysLocked()
		x.heartbeatLocked()
		x.order.Gaps()
		again, err := json.Marshal(x.storedLocked())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeStored(again); err != nil {
			t.Fatalf("stores what it cannot read back (%v): %s", err, again)
		}
		if again, err = json.Marshal(x.progressLocked()); err != nil {
			t.Fatal(err)
		}
		if _, err := decodeProgress(again); err != nil {
			t.Fatalf("stores progress it cannot read back (%v): %s", err, again)
		}
	})
}

// FuzzStoredSessions: a node starts from whatever session records its
// database holds (damaged, or written by someone else). The service starts,
// leaves out what it cannot read and runs what it can.
func FuzzStoredSessions(f *testing.F) {
	r := newRig(f)
	for _, seed := range recordSeeds(r) {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, rec, prog []byte) {
		// The state database stores JSON; anything else is refused
		// before a record is read.
		if !json.Valid(rec) || !json.Valid(prog) {
			return
		}
		if err := errors.Join(r.db.Put(bucket, fuzzSID, json.RawMessage(rec)), r.db.Put(progressBucket, fuzzSID, json.RawMessage(prog))); err != nil {
			t.Fatal(err)
		}
		s, err := New(r.config(r.db))
		if err != nil {
			t.Fatalf("the node does not start: %v", err)
		}
		defer s.Close()
		s.List()
		s.Messages(fuzzSID, 0)
		for _, x := range s.all() {
			x.mu.Lock()
			if x.hosting && (x.h == nil || !psession.ValidTag(x.tag)) {
				t.Errorf("loaded %q as %+v", x.id, x)
			}
			x.mu.Unlock()
		}
	})
}

// rosterPB and dataPB are wire forms, as a hostile peer writes them.
func rosterPB(sid, app string, host peer.ID, state pb.SessionRoster_State, version uint64, epoch uint32, members []peer.ID) *pb.SessionRoster {
	m := &pb.SessionRoster{SessionId: sid, ApplicationId: app, Host: []byte(host), State: state, Version: version, Epoch: epoch}
	for _, p := range members {
		m.Members = append(m.Members, []byte(p))
	}
	return m
}

func dataPB(d psession.Data) *pb.SessionData {
	return &pb.SessionData{SessionId: d.Session, Sender: []byte(d.Sender), Seq: d.Seq, Epoch: d.Epoch, Sealed: d.Sealed, Signature: d.Signature}
}

func encodeKey(k psession.Key) string { return base64.StdEncoding.EncodeToString(k.Secret[:]) }
