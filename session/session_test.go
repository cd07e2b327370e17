package session

import (
	"crypto/rand"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestNext(t *testing.T) {
	cases := []struct {
		from State
		in   Input
		to   State
		err  error
	}{
		{Forming, InInvite, Forming, nil},
		{Forming, InAnswer, Forming, nil},
		{Forming, InCancelUnanswered, Forming, nil},
		{Forming, InStart, Running, nil},
		{Forming, InRemove, Forming, nil},
		{Forming, InLeave, Forming, nil},
		{Forming, InEnd, Ended, nil},
		{Running, InInvite, Running, nil},
		{Running, InAnswer, Running, nil},
		{Running, InStart, Running, ErrNotForming},
		{Running, InRemove, Running, nil},
		{Running, InLeave, Running, nil},
		{Running, InEnd, Ended, nil},
		{Ended, InInvite, Ended, ErrEnded},
		{Ended, InStart, Ended, ErrEnded},
		{Ended, InEnd, Ended, ErrEnded},
		{Ended, InAnswer, Ended, ErrEnded},
	}
	for _, tc := range cases {
		got, err := Next(tc.from, tc.in)
		if got != tc.to || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("Next(%v, %v) = %v, %v; want %v, %v", tc.from, tc.in, got, err, tc.to, tc.err)
		}
	}
}

// Real peer IDs: snapshots write them as text.
var host, a, b, c, d = newID(), newID(), newID(), newID(), newID()

func newID() peer.ID {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		panic(err)
	}
	id, _ := peer.IDFromPublicKey(pub)
	return id
}

func TestHostFlow(t *testing.T) {
	h := NewHost("s1", "chat", host)
	fx, err := h.Invite([]peer.ID{a, b, c, d})
	if err != nil || !reflect.DeepEqual(fx.Invite, []peer.ID{a, b, c, d}) {
		t.Fatalf("Invite = %+v, %v", fx, err)
	}
	for i, p := range fx.Invite {
		h.Invited(p, string(rune('1'+i)))
	}
	if fx, _ := h.Invite([]peer.ID{a}); len(fx.Invite) != 0 {
		t.Fatal("invited a peer twice")
	}
	if _, err := h.Invite([]peer.ID{host}); !errors.Is(err, ErrIsHost) {
		t.Fatalf("inviting the host: %v", err)
	}
	fx, err = h.Answer(a, Member)
	if err != nil || fx.Roster == nil || fx.Roster.Version != 2 || !reflect.DeepEqual(fx.Roster.Members, []peer.ID{host, a}) {
		t.Fatalf("accept: %+v, %v", fx, err)
	}
	h.Answer(b, Member)
	if fx, _ := h.Answer(c, Declined); fx.Roster != nil {
		t.Fatal("a decline made a roster")
	}
	if _, err := h.Answer(c, Member); !errors.Is(err, ErrNotInvited) {
		t.Fatalf("answering twice: %v", err)
	}
	fx, _ = h.CancelUnanswered()
	if !reflect.DeepEqual(fx.Cancel, []string{"4"}) {
		t.Fatalf("cancel: %v", fx.Cancel)
	}
	h.Answer(d, Cancelled)
	fx, err = h.Start()
	if err != nil || fx.Roster.State != Running {
		t.Fatalf("start: %+v %v", fx, err)
	}
	if _, err := h.Start(); !errors.Is(err, ErrNotForming) {
		t.Fatalf("second start: %v", err)
	}
	epoch := fx.Roster.Epoch
	fx, err = h.Remove(b)
	if err != nil || !fx.Rekey || fx.Roster.Epoch != epoch+1 || fx.Roster.IsMember(b) {
		t.Fatalf("remove: %+v %v", fx, err)
	}
	if _, err := h.Remove(b); !errors.Is(err, ErrNotMember) {
		t.Fatalf("removing twice: %v", err)
	}
	if _, err := h.Leave(host); !errors.Is(err, ErrIsHost) {
		t.Fatalf("host leaving: %v", err)
	}
	fx, _ = h.Leave(a)
	if !fx.Rekey || !reflect.DeepEqual(fx.Roster.Members, []peer.ID{host}) {
		t.Fatalf("leave: %+v", fx)
	}
	// Restored from a snapshot, the host goes on where it was.
	h = RestoreHost(h.Snapshot())
	fx, err = h.End()
	if err != nil || fx.Roster.State != Ended {
		t.Fatalf("end: %+v %v", fx, err)
	}
	if _, err := h.Invite([]peer.ID{c}); !errors.Is(err, ErrEnded) {
		t.Fatalf("invite after end: %v", err)
	}
	want := map[peer.ID]Standing{host: Member, a: Left, b: Removed, c: Declined, d: Cancelled}
	if got := h.Standing(); !reflect.DeepEqual(got, want) {
		t.Fatalf("standing %v, want %v", got, want)
	}
}

var names = map[peer.ID]string{a: "a", b: "b", c: "c"}

func TestOrder(t *testing.T) {
	o := NewOrder[string]()
	steps := []struct {
		sender peer.ID
		seq    uint64
		want   []string
	}{
		{a, 1, []string{"a1"}},
		{a, 3, nil},
		{a, 1, nil}, // duplicate
		{b, 2, nil},
		{a, 2, []string{"a2", "a3"}},
		{b, 1, []string{"b1", "b2"}},
		{a, 5, nil},
	}
	for i, s := range steps {
		got := o.Add(s.sender, s.seq, names[s.sender]+string(rune('0'+s.seq)))
		if !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: Add(%s, %d) = %v, want %v", i, s.sender, s.seq, got, s.want)
		}
	}
	o.Saw(b, 4) // a heartbeat: b sent up to 4
	want := []Gap{{a, 4, 4}, {b, 3, 4}}
	if b < a { // Gaps lists senders by peer ID
		want[0], want[1] = want[1], want[0]
	}
	if got := o.Gaps(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Gaps = %v, want %v", got, want)
	}
	if got := o.Skip(a, 5); !reflect.DeepEqual(got, []string{"a5"}) {
		t.Fatalf("Skip = %v", got)
	}
	o.Start(c, 10)
	if got := o.Add(c, 9, "old"); got != nil {
		t.Fatalf("before the start: %v", got)
	}
	if got := o.Add(c, 10, "c10"); !reflect.DeepEqual(got, []string{"c10"}) {
		t.Fatalf("at the start: %v", got)
	}
	if pos := o.Positions(); pos[a] != 6 || pos[b] != 3 || pos[c] != 11 {
		t.Fatalf("positions %v", pos)
	}
}

// TestOrderHostileNumbers: a sender (or a heartbeat) that claims numbers
// far ahead, up to the largest there is, costs Order no more than the
// messages it holds, and no more than MaxHeld of them.
func TestOrderHostileNumbers(t *testing.T) {
	o := NewOrder[string]()
	o.Add(a, 1, "a1")
	o.Add(a, math.MaxUint64, "last")
	o.Saw(b, math.MaxUint64)
	want := []Gap{{a, 2, math.MaxUint64 - 1}, {b, 1, math.MaxUint64}}
	if b < a {
		want[0], want[1] = want[1], want[0]
	}
	if got := o.Gaps(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Gaps = %v, want %v", got, want)
	}
	if got := o.Skip(a, 0); got != nil {
		t.Fatalf("Skip(0) = %v", got)
	}
	for i := range uint64(2 * MaxHeld) {
		o.Add(c, 10+i, "early")
	}
	if n := len(o.held[c]); n != MaxHeld {
		t.Fatalf("holds %d early messages, want %d", n, MaxHeld)
	}
	if _, kept := o.held[c][10]; !kept {
		t.Fatal("dropped the nearest early message")
	}
	if got := o.Add(c, 1, "c1"); len(got) != 1 {
		t.Fatalf("Add = %v", got)
	}
}
