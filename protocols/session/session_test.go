package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/pb"
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
	key := NewKey(3)
	d, err := Seal(sid, k.Sign, id, 7, key, []byte("hello members"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(d.Sealed, []byte("hello")) {
		t.Fatal("sealed message shows its text")
	}
	if err := Verify(&d); err != nil {
		t.Fatal(err)
	}
	if got, err := Open(key, &d); err != nil || string(got) != "hello members" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	for name, tamper := range map[string]func(*Data){
		"seq":      func(d *Data) { d.Seq++ },
		"epoch":    func(d *Data) { d.Epoch++ },
		"session":  func(d *Data) { d.Session = "ffffffffffffffffffffffffffffffff" },
		"sealed":   func(d *Data) { d.Sealed[len(d.Sealed)-1] ^= 1 },
		"sender":   func(d *Data) { _, other := identity(t); d.Sender = other },
		"no sig":   func(d *Data) { d.Signature = nil },
		"bad keys": func(d *Data) { d.Sender = "junk" },
	} {
		c := d
		c.Sealed = slices.Clone(d.Sealed)
		tamper(&c)
		if err := Verify(&c); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: Verify = %v", name, err)
		}
	}
	if _, err := Open(NewKey(3), &d); !errors.Is(err, ErrCannotOpen) {
		t.Errorf("other key: %v", err)
	}
	if _, err := Seal(sid, k.Sign, id, 1, key, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	// The wire form carries every field.
	if back := dataFromPB(d.toPB()); Verify(&back) != nil || back.Seq != 7 || back.Sender != id {
		t.Errorf("through the wire: %+v", back)
	}
}

type roster struct {
	host    peer.ID
	members map[peer.ID]bool
	keys    map[uint32]Key
	missing []uint32
}

func (r *roster) Host() peer.ID           { return r.host }
func (r *roster) IsMember(p peer.ID) bool { return r.members[p] }
func (r *roster) Key(e uint32) (Key, bool) {
	k, ok := r.keys[e]
	return k, ok
}
func (r *roster) Missing(e uint32) { r.missing = append(r.missing, e) }

func TestValidator(t *testing.T) {
	hk, host := identity(t)
	mk, member := identity(t)
	ok, outsider := identity(t)
	key, newer, later := NewKey(1), NewKey(2), NewKey(3)
	r := &roster{host: host, members: map[peer.ID]bool{host: true, member: true}, keys: map[uint32]Key{1: key, 3: later}}
	v := Validator(sid, r)
	seal := func(k Key, tm TopicMessage) []byte {
		b, err := SealTopic(sid, k, tm)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	data := func(pk crypto.PrivKey, id peer.ID) TopicMessage {
		d, _ := Seal(sid, pk.Sign, id, 1, key, []byte("x"))
		return TopicMessage{Data: &d}
	}
	badSig := data(mk, member)
	badSig.Data.Signature[0] ^= 1
	rost := TopicMessage{Roster: &Roster{Session: sid}}
	otherRoster := TopicMessage{Roster: &Roster{Session: "ffffffffffffffffffffffffffffffff"}}
	clear, _ := proto.Marshal(rost.toPB())
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
		{"outsider's, sealed with its own key", msg(outsider, seal(NewKey(1), data(ok, outsider))), pubsub.ValidationReject},
		{"member's, relayed by an outsider", msg(outsider, seal(key, data(mk, member))), pubsub.ValidationReject},
		{"member's, with a bad signature", msg(member, seal(key, badSig)), pubsub.ValidationReject},
		{"member's, in an envelope of another epoch", msg(member, seal(later, data(mk, member))), pubsub.ValidationReject},
		{"roster from the host", msg(host, seal(key, rost)), pubsub.ValidationAccept},
		{"roster of another session", msg(host, seal(key, otherRoster)), pubsub.ValidationReject},
		{"roster from a member", msg(member, seal(key, rost)), pubsub.ValidationReject},
		{"roster in clear", msg(host, clear), pubsub.ValidationReject},
		{"empty topic message", msg(host, seal(key, TopicMessage{})), pubsub.ValidationReject},
		{"garbage", msg(member, []byte{0xff, 0x01}), pubsub.ValidationReject},
		{"a new epoch, from the host", msg(host, seal(newer, rost)), pubsub.ValidationIgnore},
		{"a new epoch, from an outsider", msg(outsider, seal(newer, rost)), pubsub.ValidationIgnore},
	} {
		if got := v(context.Background(), member, tc.m); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if _, handed := tc.m.ValidatorData.(*TopicMessage); handed != (tc.want == pubsub.ValidationAccept) {
			t.Errorf("%s: handed on %v", tc.name, tc.m.ValidatorData)
		}
	}
	if len(r.missing) != 1 || r.missing[0] != 2 {
		t.Errorf("Missing was told %v, want [2] (the host's new epoch, not the outsider's)", r.missing)
	}
}

func TestSealTopicPads(t *testing.T) {
	key := NewKey(1)
	sizes := map[int]bool{}
	for _, n := range []int{0, 1, 10, 100, 150} {
		hb := &Heartbeat{Session: sid, Version: uint64(n), Highest: map[peer.ID]uint64{}}
		for range n / 50 {
			_, p := identity(t)
			hb.Highest[p] = 1
		}
		b, err := SealTopic(sid, key, TopicMessage{Heartbeat: hb})
		if err != nil {
			t.Fatal(err)
		}
		sizes[len(b)] = true
		got, err := OpenTopic(sid, key, b)
		if err != nil || got.Heartbeat == nil || got.Heartbeat.Version != hb.Version || len(got.Heartbeat.Highest) != len(hb.Highest) {
			t.Fatalf("OpenTopic = %+v, %v", got, err)
		}
		if _, err := OpenTopic("ffffffffffffffffffffffffffffffff", key, b); !errors.Is(err, ErrCannotOpen) {
			t.Fatalf("opened with another session's binding: %v", err)
		}
	}
	if len(sizes) != 1 {
		t.Fatalf("heartbeats of different lengths seal to sizes %v, want one", sizes)
	}
}

func TestRosterValid(t *testing.T) {
	_, host := identity(t)
	_, a := identity(t)
	good := Roster{Session: sid, App: "chat", Host: host, State: Running, Version: 2, Epoch: 1, Members: []peer.ID{host, a}}
	for _, tc := range []struct {
		name   string
		change func(*Roster)
		want   bool
	}{
		{"good", func(*Roster) {}, true},
		{"other session", func(r *Roster) { r.Session = "ffffffffffffffffffffffffffffffff" }, false},
		{"other host", func(r *Roster) { r.Host = a }, false},
		{"no version", func(r *Roster) { r.Version = 0 }, false},
		{"no epoch", func(r *Roster) { r.Epoch = 0 }, false},
		{"unknown state", func(r *Roster) { r.State = 7 }, false},
		{"bad application", func(r *Roster) { r.App = "" }, false},
		{"host not first", func(r *Roster) { r.Members = []peer.ID{a, host} }, false},
		{"a member twice", func(r *Roster) { r.Members = []peer.ID{host, a, a} }, false},
		{"no members", func(r *Roster) { r.Members = nil }, false},
	} {
		r := good
		r.Members = slices.Clone(good.Members)
		tc.change(&r)
		if got := r.Valid(sid, host); got != tc.want {
			t.Errorf("%s: Valid = %v", tc.name, got)
		}
	}
}

// fake is a Handler that answers from its fields and records what it was
// given.
type fake struct {
	joined  Joined
	err     error
	fetched []Data
	posted  []Data
	got     []TopicMessage
}

func (f *fake) Join(peer.ID, string, string) (Joined, error) { return f.joined, f.err }
func (f *fake) Fetch(peer.ID, string, peer.ID, uint64, uint64) ([]Data, error) {
	return f.fetched, f.err
}
func (f *fake) Post(_ peer.ID, d Data) error { f.posted = append(f.posted, d); return f.err }
func (f *fake) Leave(peer.ID, string) error  { return f.err }
func (f *fake) HostRequest(peer.ID, string, string) (string, error) {
	return sid, f.err
}
func (f *fake) Deliver(_ peer.ID, _ string, m TopicMessage) error {
	f.got = append(f.got, m)
	return f.err
}

// pair makes two connected mocknet hosts with Ed25519 keys (a peer ID of
// one carries its key, which Verify needs; mocknet's own are ECDSA).
func pair(t testing.TB) (a, b host.Host) {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	for i := range 2 {
		k, _ := identity(t)
		if _, err := mn.AddPeer(k, ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4242", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	return mn.Hosts()[0], mn.Hosts()[1]
}

// TestRequests: each client function against a handler, over mocknet;
// refusals come back as *StatusError that unwraps to the sentinel the
// handler returned, with its detail.
func TestRequests(t *testing.T) {
	a, b := pair(t)
	f := &fake{}
	svc := New(b, f)
	t.Cleanup(func() { svc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ak := a.Peerstore().PrivKey(a.ID())
	key := NewKey(2)
	f.joined = Joined{Roster: Roster{Session: sid, App: "chat", Host: b.ID(), State: Running, Version: 3, Epoch: 2,
		Members: []peer.ID{b.ID(), a.ID()}}, Keys: []Key{NewKey(1), key}, TopicTag: NewTopicTag()}
	j, err := Join(ctx, a, b.ID(), sid, "inv")
	if err != nil || j.Roster.Version != 3 || len(j.Keys) != 2 || j.Keys[1] != key || j.TopicTag != f.joined.TopicTag {
		t.Fatalf("Join = %+v, %v", j, err)
	}
	// An answer of another session, a key of an epoch ahead of the roster,
	// no topic tag: ErrBadAnswer.
	for name, spoil := range map[string]func(*Joined){
		"other session": func(j *Joined) { j.Roster.Session = "ffffffffffffffffffffffffffffffff" },
		"future key":    func(j *Joined) { j.Keys = []Key{NewKey(3)} },
		"no tag":        func(j *Joined) { j.TopicTag = "" },
	} {
		good := f.joined
		spoil(&f.joined)
		if _, err := Join(ctx, a, b.ID(), sid, ""); !errors.Is(err, ErrBadAnswer) {
			t.Errorf("%s: Join = %v", name, err)
		}
		f.joined = good
	}

	// Fetch keeps the sender's signed messages in range, once each.
	var ds []Data
	for seq := range uint64(4) {
		d, _ := Seal(sid, ak.Sign, a.ID(), seq+1, key, []byte("m"))
		ds = append(ds, d)
	}
	forged := ds[1]
	forged.Signature = slices.Clone(forged.Signature)
	forged.Signature[0] ^= 1
	f.fetched = []Data{ds[0], ds[1], ds[1], forged, ds[3]}
	got, err := Fetch(ctx, a, b.ID(), sid, a.ID(), 1, 3)
	if err != nil || len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("Fetch = %v, %v", got, err)
	}

	if err := Post(ctx, a, b.ID(), ds[0]); err != nil || len(f.posted) != 1 || f.posted[0].Seq != 1 {
		t.Fatalf("Post = %v, %v", err, f.posted)
	}
	// Only one's own messages may be posted.
	bk := b.Peerstore().PrivKey(b.ID())
	theirs, _ := Seal(sid, bk.Sign, b.ID(), 1, key, []byte("x"))
	if err := Post(ctx, a, b.ID(), theirs); !errors.Is(err, ErrInvalid) {
		t.Fatalf("posting another's message: %v", err)
	}
	if err := Deliver(ctx, a, b.ID(), sid, TopicMessage{Data: &ds[2]}); err != nil || len(f.got) != 1 || f.got[0].Data.Seq != 3 {
		t.Fatalf("Deliver = %v, %v", err, f.got)
	}
	if id, err := RequestHost(ctx, a, b.ID(), "chat", "please"); err != nil || id != sid {
		t.Fatalf("RequestHost = %q, %v", id, err)
	}

	for _, refusal := range []error{ErrUnknown, ErrNotMember, ErrEnded, ErrInvalid, ErrPending, ErrDeclined} {
		f.err = Refuse(refusal, "because")
		errs := map[string]error{"leave": Leave(ctx, a, b.ID(), sid)}
		_, errs["join"] = Join(ctx, a, b.ID(), sid, "")
		_, errs["host request"] = RequestHost(ctx, a, b.ID(), "chat", "")
		for what, err := range errs {
			var se *StatusError
			if !errors.Is(err, refusal) || !errors.As(err, &se) || se.Detail != "because" || err.Error() != refusal.Error()+": because" {
				t.Errorf("%s refused with %v: got %v", what, refusal, err)
			}
		}
	}
	// Any other error resets the stream: no answer.
	f.err = errors.New("broken")
	if err := Leave(ctx, a, b.ID(), sid); err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("a failing handler answered: %v", err)
	}
}

// TestUnknownStatus: a status this node does not know is ErrBadAnswer.
func TestUnknownStatus(t *testing.T) {
	if err := errorOf(&pb.SessionResponse{Status: 77}); !errors.Is(err, ErrBadAnswer) {
		t.Fatalf("status 77: %v", err)
	}
}
