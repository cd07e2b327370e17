package session

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/pb"
)

// FuzzValidator: anything on a session topic, sealed with the session's
// key (plain is the topic message before sealing) or not (then plain is the
// envelope itself), from the host, a member or an outsider. The validator
// accepts only what the session's rules allow: a roster or heartbeat of
// this session from the host; well-formed data of this session, signed by
// a current member and published by it or the host, in an envelope of its
// own epoch; and it hands on only what it accepted.
func FuzzValidator(f *testing.F) {
	hk, host := identity(f)
	mk, member := identity(f)
	_, outsider := identity(f)
	key := NewKey(1)
	r := &roster{host: host, members: map[peer.ID]bool{host: true, member: true}, keys: map[uint32]Key{1: key}}
	v := Validator(sid, r)
	add := func(tm TopicMessage) {
		b, _ := proto.Marshal(tm.toPB())
		for from := range byte(3) {
			f.Add(b, true, from)
		}
	}
	d, _ := Seal(sid, mk.Sign, member, 1, key, []byte("hello"))
	add(TopicMessage{Data: &d})
	d, _ = Seal(sid, hk.Sign, host, MaxSeq, key, []byte("last"))
	add(TopicMessage{Data: &d})
	add(TopicMessage{Roster: &Roster{Session: sid, App: "chat", Host: host, State: Running, Version: 3, Epoch: 1, Members: []peer.ID{host, member}}})
	add(TopicMessage{Heartbeat: &Heartbeat{Session: sid, Version: 3, Highest: map[peer.ID]uint64{member: 1 << 63}}})
	add(TopicMessage{})
	env, _ := SealTopic(sid, key, TopicMessage{Data: &d})
	f.Add(env, false, byte(0))
	f.Add([]byte{0x08, 0x02, 0x12, 0x01, 0x00}, false, byte(0))
	f.Fuzz(func(t *testing.T, plain []byte, sealed bool, who byte) {
		from := []peer.ID{host, member, outsider}[int(who)%3]
		data := plain
		if sealed {
			var err error
			if data, err = SealEnvelope(sid, key, plain); err != nil {
				return
			}
		}
		msg := &pubsub.Message{Message: &pubsub_pb.Message{From: []byte(from), Data: data}}
		res := v(context.Background(), from, msg)
		tm, handed := msg.ValidatorData.(*TopicMessage)
		if res != pubsub.ValidationAccept {
			if handed {
				t.Fatalf("%v, but handed on %+v", res, tm)
			}
			return
		}
		if !handed {
			t.Fatal("accepted, but handed nothing on")
		}
		switch {
		case tm.Roster != nil:
			if from != host || tm.Roster.Session != sid {
				t.Fatalf("accepted a roster from %s: %+v", from, tm.Roster)
			}
		case tm.Heartbeat != nil:
			if from != host || tm.Heartbeat.Session != sid {
				t.Fatalf("accepted a heartbeat from %s: %+v", from, tm.Heartbeat)
			}
			for _, seq := range tm.Heartbeat.Highest {
				if seq > MaxSeq {
					t.Fatalf("a heartbeat claims %d", seq)
				}
			}
		case tm.Data != nil:
			d := tm.Data
			if CheckData(sid, d) != nil || Verify(d) != nil || !r.IsMember(d.Sender) || (from != d.Sender && from != host) || d.Epoch != 1 {
				t.Fatalf("accepted data %+v from %s", d, from)
			}
		default:
			t.Fatalf("accepted %+v", tm)
		}
	})
}

// FuzzRequest: whatever request arrives gets an answer or a reset, never a
// hang or a panic, and the handler is given only what the protocol checked.
func FuzzRequest(f *testing.F) {
	a, b := pair(f)
	h := &strict{t: f}
	svc := New(b, h)
	f.Cleanup(func() { svc.Close() })
	seed, _ := proto.Marshal(&pb.SessionRequest{SessionId: sid, Msg: &pb.SessionRequest_Fetch{Fetch: &pb.SessionFetch{Sender: []byte(a.ID()), From: 1, To: 5}}})
	f.Add(seed)
	ak := a.Peerstore().PrivKey(a.ID())
	d, _ := Seal(sid, ak.Sign, a.ID(), 1, NewKey(1), []byte("x"))
	seed, _ = proto.Marshal(&pb.SessionRequest{SessionId: sid, Msg: &pb.SessionRequest_Post{Post: &pb.SessionPost{Data: d.toPB()}}})
	f.Add(seed)
	seed, _ = proto.Marshal(&pb.SessionRequest{SessionId: sid, Msg: &pb.SessionRequest_Deliver{Deliver: &pb.SessionDeliver{Message: (&TopicMessage{Data: &d}).toPB()}}})
	f.Add(seed)
	f.Add([]byte{0x0a, 0x01, 0x30})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r pb.SessionRequest
		if proto.Unmarshal(data, &r) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		request(ctx, a, b.ID(), &r)
		if msg := h.failed(); msg != "" {
			t.Fatal(msg)
		}
	})
}

// strict is a Handler that checks what the protocol hands it, and refuses
// everything.
type strict struct {
	t   testing.TB
	mu  sync.Mutex
	bad string
}

func (s *strict) fail(msg string) {
	s.mu.Lock()
	s.bad = msg
	s.mu.Unlock()
}

func (s *strict) failed() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bad
}

func (s *strict) Join(_ peer.ID, session, _ string) (Joined, error) {
	if !ValidTag(session) {
		s.fail("join of a malformed session ID")
	}
	return Joined{}, ErrUnknown
}

func (s *strict) Fetch(_ peer.ID, session string, _ peer.ID, first, last uint64) ([]Data, error) {
	if !ValidTag(session) || first == 0 || last < first || last-first >= MaxFetch {
		s.fail("a malformed fetch")
	}
	return nil, ErrUnknown
}

func (s *strict) Post(from peer.ID, d Data) error {
	if CheckData(d.Session, &d) != nil || Verify(&d) != nil || d.Sender != from {
		s.fail("a malformed or forged post")
	}
	return ErrUnknown
}

func (s *strict) Leave(peer.ID, string) error { return ErrUnknown }

func (s *strict) HostRequest(peer.ID, string, string) (string, error) { return "", ErrDeclined }

func (s *strict) Deliver(_ peer.ID, session string, m TopicMessage) error {
	if d := m.Data; d != nil && (CheckData(session, d) != nil || Verify(d) != nil) {
		s.fail("a malformed or forged delivery")
	}
	n := 0
	for _, set := range []bool{m.Data != nil, m.Roster != nil, m.Heartbeat != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		s.fail("a delivery of no single message")
	}
	return ErrUnknown
}

// hostile answers every session request with the bytes it is given.
type hostile struct {
	mu     sync.Mutex
	answer []byte
}

func (h *hostile) set(b []byte) {
	h.mu.Lock()
	h.answer = b
	h.mu.Unlock()
}

func (h *hostile) serve(s network.Stream) {
	s.SetDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, io.LimitReader(s, MaxRequestSize)) // the requester closes its side
	h.mu.Lock()
	b := h.answer
	h.mu.Unlock()
	s.Write(b)
	s.Close()
}

func delimited(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	return append(protowire.AppendVarint(nil, uint64(len(b))), b...)
}

// FuzzAnswers: a hostile peer answers a join and a fetch with anything.
// Join returns an error or an answer that holds together (a roster of the
// session and host asked, a topic tag, keys of epochs the roster knows);
// Fetch returns only well-formed, signed messages of the sender and range
// asked, once each.
func FuzzAnswers(f *testing.F) {
	a, b := pair(f)
	h := &hostile{}
	b.SetStreamHandler(ID, h.serve)
	bk := b.Peerstore().PrivKey(b.ID())
	key := NewKey(1)
	ok := &pb.SessionResponse{TopicTag: NewTopicTag(), Keys: []*pb.SessionKey{keyToPB(key)},
		Roster: (&Roster{Session: sid, App: "chat", Host: b.ID(), State: Running, Version: 3, Epoch: 1, Members: []peer.ID{b.ID(), a.ID()}}).toPB()}
	f.Add(delimited(ok))
	future := proto.Clone(ok).(*pb.SessionResponse)
	future.Keys[0].Epoch = 9
	f.Add(delimited(future))
	var msgs []*pb.SessionData
	for _, seq := range []uint64{1, 2, 3, 5, 9, MaxSeq} {
		d, _ := Seal(sid, bk.Sign, b.ID(), seq, key, []byte("hi"))
		msgs = append(msgs, d.toPB())
	}
	f.Add(delimited(&pb.SessionResponse{Messages: append(msgs, msgs[0])}))
	f.Add(delimited(&pb.SessionResponse{Status: pb.SessionResponse_ENDED, Roster: ok.Roster}))
	f.Add(delimited(&pb.SessionResponse{Status: 77}))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, answer []byte) {
		h.set(answer)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if j, err := Join(ctx, a, b.ID(), sid, ""); err == nil && !j.check(sid, b.ID()) {
			t.Fatalf("Join took %+v", j)
		}
		ds, err := Fetch(ctx, a, b.ID(), sid, b.ID(), 1, 5)
		seen := map[uint64]bool{}
		for _, d := range ds {
			if err != nil || d.Sender != b.ID() || d.Seq < 1 || d.Seq > 5 || seen[d.Seq] || CheckData(sid, &d) != nil || Verify(&d) != nil {
				t.Fatalf("Fetch took %+v (%v)", d, err)
			}
			seen[d.Seq] = true
		}
	})
}
