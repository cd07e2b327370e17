package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/pb"
	psession "github.com/peercollab/peercollab/protocols/session"
)

const sid = "0123456789abcdef0123456789abcdef"

func identity(t testing.TB) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

func TestSealOpenVerify(t *testing.T) {
	k, id := identity(t)
	key := psession.NewKey(3)
	d, err := psession.Seal(sid, k.Sign, id, 7, key, []byte("hello members"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(d.Sealed, []byte("hello")) {
		t.Fatal("sealed message shows its text")
	}
	if err := psession.Verify(d); err != nil {
		t.Fatal(err)
	}
	if got, err := psession.Open(key, d); err != nil || string(got) != "hello members" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	for name, tamper := range map[string]func(*pb.SessionData){
		"seq":      func(d *pb.SessionData) { d.Seq++ },
		"epoch":    func(d *pb.SessionData) { d.Epoch++ },
		"session":  func(d *pb.SessionData) { d.SessionId = "ffffffffffffffffffffffffffffffff" },
		"sealed":   func(d *pb.SessionData) { d.Sealed[len(d.Sealed)-1] ^= 1 },
		"sender":   func(d *pb.SessionData) { _, other := identity(t); d.Sender = []byte(other) },
		"no sig":   func(d *pb.SessionData) { d.Signature = nil },
		"bad keys": func(d *pb.SessionData) { d.Sender = []byte("junk") },
	} {
		c := proto.Clone(d).(*pb.SessionData)
		tamper(c)
		if err := psession.Verify(c); !errors.Is(err, psession.ErrBadSignature) {
			t.Errorf("%s: Verify = %v", name, err)
		}
	}
	if _, err := psession.Open(psession.NewKey(3), d); !errors.Is(err, psession.ErrCannotOpen) {
		t.Errorf("other key: %v", err)
	}
	if _, err := psession.Seal(sid, k.Sign, id, 1, key, make([]byte, psession.MaxPayload+1)); !errors.Is(err, psession.ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
}

type roster struct {
	host    peer.ID
	members map[peer.ID]bool
	keys    map[uint32]psession.Key
	missing []uint32
}

func (r *roster) Host() peer.ID           { return r.host }
func (r *roster) IsMember(p peer.ID) bool { return r.members[p] }
func (r *roster) Key(e uint32) (psession.Key, bool) {
	k, ok := r.keys[e]
	return k, ok
}
func (r *roster) Missing(e uint32) { r.missing = append(r.missing, e) }

func TestValidator(t *testing.T) {
	hk, host := identity(t)
	mk, member := identity(t)
	ok, outsider := identity(t)
	key, newer, later := psession.NewKey(1), psession.NewKey(2), psession.NewKey(3)
	r := &roster{host: host, members: map[peer.ID]bool{host: true, member: true}, keys: map[uint32]psession.Key{1: key, 3: later}}
	v := psession.Validator(sid, r)
	seal := func(k psession.Key, tm *pb.SessionTopicMessage) []byte {
		b, err := psession.SealTopic(sid, k, tm)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	data := func(pk crypto.PrivKey, id peer.ID) *pb.SessionTopicMessage {
		d, _ := psession.Seal(sid, pk.Sign, id, 1, key, []byte("x"))
		return &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Data{Data: d}}
	}
	badSig := data(mk, member)
	badSig.GetData().Signature[0] ^= 1
	roster := &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Roster{Roster: &pb.SessionRoster{SessionId: sid}}}
	otherRoster := &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Roster{Roster: &pb.SessionRoster{SessionId: "ffffffffffffffffffffffffffffffff"}}}
	clear, _ := proto.Marshal(roster)
	msg := func(from peer.ID, b []byte) *pubsub.Message {
		return &pubsub.Message{Message: &pubsub_pb.Message{From: []byte(from), Data: b}}
	}
	for _, tc := range []struct {
		name string
		m    *pubsub.Message
		want pubsub.ValidationResult
	}{
		{"member's own", msg(member, seal(key, data(mk, member))), pubsub.ValidationAccept},
		{"passed on by the host", msg(host, seal(key, data(mk, member))), pubsub.ValidationAccept},
		{"host's own", msg(host, seal(key, data(hk, host))), pubsub.ValidationAccept},
		{"outsider's, sealed with the key", msg(outsider, seal(key, data(ok, outsider))), pubsub.ValidationIgnore},
		{"outsider's, sealed with its own key", msg(outsider, seal(psession.NewKey(1), data(ok, outsider))), pubsub.ValidationReject},
		{"member's, relayed by an outsider", msg(outsider, seal(key, data(mk, member))), pubsub.ValidationReject},
		{"member's, with a bad signature", msg(member, seal(key, badSig)), pubsub.ValidationReject},
		{"member's, in an envelope of another epoch", msg(member, seal(later, data(mk, member))), pubsub.ValidationReject},
		{"roster from the host", msg(host, seal(key, roster)), pubsub.ValidationAccept},
		{"roster of another session", msg(host, seal(key, otherRoster)), pubsub.ValidationReject},
		{"roster from a member", msg(member, seal(key, roster)), pubsub.ValidationReject},
		{"roster in clear", msg(host, clear), pubsub.ValidationReject},
		{"garbage", msg(member, []byte{0xff, 0x01}), pubsub.ValidationReject},
		{"a new epoch, from the host", msg(host, seal(newer, roster)), pubsub.ValidationIgnore},
		{"a new epoch, from an outsider", msg(outsider, seal(newer, roster)), pubsub.ValidationIgnore},
	} {
		if got := v(context.Background(), member, tc.m); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if len(r.missing) != 1 || r.missing[0] != 2 {
		t.Errorf("Missing was told %v, want [2] (the host's new epoch, not the outsider's)", r.missing)
	}
}

func TestSealTopicPads(t *testing.T) {
	key := psession.NewKey(1)
	sizes := map[int]bool{}
	for _, n := range []int{0, 1, 10, 100, 150} {
		tm := &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Heartbeat{Heartbeat: &pb.SessionHeartbeat{SessionId: sid, Highest: map[string]uint64{string(bytes.Repeat([]byte("p"), n)): 1}}}}
		b, err := psession.SealTopic(sid, key, tm)
		if err != nil {
			t.Fatal(err)
		}
		sizes[len(b)] = true
		var env pb.SessionEnvelope
		if err := proto.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		got, err := psession.OpenTopic(sid, key, &env)
		if err != nil || !proto.Equal(got, tm) {
			t.Fatalf("OpenTopic = %v, %v", got, err)
		}
		if _, err := psession.OpenTopic("ffffffffffffffffffffffffffffffff", key, &env); !errors.Is(err, psession.ErrCannotOpen) {
			t.Fatalf("opened with another session's binding: %v", err)
		}
	}
	if len(sizes) != 1 {
		t.Fatalf("heartbeats of different lengths seal to sizes %v, want one", sizes)
	}
}

// nopHandler refuses everything it is asked.
type nopHandler struct{}

func (nopHandler) Join(peer.ID, string, string) *pb.SessionResponse {
	return &pb.SessionResponse{Status: pb.SessionResponse_UNKNOWN}
}
func (nopHandler) Fetch(peer.ID, string, peer.ID, uint64, uint64) *pb.SessionResponse {
	return &pb.SessionResponse{Status: pb.SessionResponse_UNKNOWN}
}
func (nopHandler) Post(peer.ID, string, *pb.SessionData) *pb.SessionResponse {
	return &pb.SessionResponse{Status: pb.SessionResponse_UNKNOWN}
}
func (nopHandler) Leave(peer.ID, string) *pb.SessionResponse {
	return &pb.SessionResponse{Status: pb.SessionResponse_UNKNOWN}
}
func (nopHandler) HostRequest(peer.ID, string, string) *pb.SessionResponse {
	return &pb.SessionResponse{Status: pb.SessionResponse_DECLINED}
}

func (nopHandler) Deliver(peer.ID, string, *pb.SessionTopicMessage) *pb.SessionResponse {
	return &pb.SessionResponse{Status: pb.SessionResponse_UNKNOWN}
}

func FuzzRequest(f *testing.F) {
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mn.Close() })
	a, b := mn.Hosts()[0], mn.Hosts()[1]
	svc := psession.Serve(b, nopHandler{})
	f.Cleanup(func() { svc.Close() })
	seed, _ := proto.Marshal(&pb.SessionRequest{SessionId: sid, Msg: &pb.SessionRequest_Fetch{Fetch: &pb.SessionFetch{Sender: []byte(a.ID()), From: 1, To: 5}}})
	f.Add(seed)
	f.Add([]byte{0x0a, 0x01, 0x30})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r pb.SessionRequest
		if proto.Unmarshal(data, &r) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Whatever arrives gets an answer or a reset, never a hang or a panic.
		psession.Request(ctx, a, b.ID(), &r)
	})
}
