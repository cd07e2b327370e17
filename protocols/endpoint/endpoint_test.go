package endpoint_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
)

func TestNext(t *testing.T) {
	change := []byte{1}
	cases := []struct {
		name           string
		epoch, version uint64
		u              *pb.Update
		want           endpoint.Verdict
	}{
		{"next change", 7, 3, &pb.Update{Epoch: 7, Version: 4, Sealed: change}, endpoint.Apply},
		{"duplicate", 7, 3, &pb.Update{Epoch: 7, Version: 3, Sealed: change}, endpoint.Ignore},
		{"old", 7, 3, &pb.Update{Epoch: 7, Version: 1, Sealed: change}, endpoint.Ignore},
		{"gap", 7, 3, &pb.Update{Epoch: 7, Version: 5, Sealed: change}, endpoint.Resync},
		{"heartbeat current", 7, 3, &pb.Update{Epoch: 7, Version: 3}, endpoint.Ignore},
		{"heartbeat ahead: last change lost", 7, 3, &pb.Update{Epoch: 7, Version: 4}, endpoint.Resync},
		{"host restarted", 7, 3, &pb.Update{Epoch: 8, Version: 1, Sealed: change}, endpoint.Resync},
		{"restart with lower epoch", 7, 3, &pb.Update{Epoch: 6, Version: 4, Sealed: change}, endpoint.Resync},
	}
	for _, tc := range cases {
		if got := endpoint.Next(tc.epoch, tc.version, tc.u); got != tc.want {
			t.Errorf("%s: Next = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSealOpen(t *testing.T) {
	owner, other := peer.ID("owner"), peer.ID("other")
	k := endpoint.NewKey(1, endpoint.Full)
	change := &pb.Change{Change: &pb.Change_ObjectSet{ObjectSet: &pb.Object{Id: "pic", Data: []byte("jpeg")}}}
	u, err := endpoint.Seal(k, owner, 9, 4, change)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(u.Sealed, []byte("jpeg")) {
		t.Fatal("sealed update shows its content")
	}
	got, err := endpoint.Open(k, owner, u)
	if err != nil || !proto.Equal(got, change) {
		t.Fatalf("Open = %v, %v", got, err)
	}
	for name, tamper := range map[string]func(u *pb.Update) (endpoint.Key, peer.ID){
		"other key":     func(*pb.Update) (endpoint.Key, peer.ID) { return endpoint.NewKey(1, endpoint.Full), owner },
		"other owner":   func(*pb.Update) (endpoint.Key, peer.ID) { return k, other },
		"replayed":      func(u *pb.Update) (endpoint.Key, peer.ID) { u.Version = 5; return k, owner },
		"flipped byte":  func(u *pb.Update) (endpoint.Key, peer.ID) { u.Sealed[30] ^= 1; return k, owner },
		"short payload": func(u *pb.Update) (endpoint.Key, peer.ID) { u.Sealed = u.Sealed[:5]; return k, owner },
	} {
		c := proto.Clone(u).(*pb.Update)
		key, who := tamper(c)
		if _, err := endpoint.Open(key, who, c); !errors.Is(err, endpoint.ErrCannotOpen) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	hb, _ := endpoint.Seal(k, owner, 9, 4, nil)
	if c, err := endpoint.Open(k, owner, hb); c != nil || err != nil {
		t.Errorf("heartbeat opened to %v, %v", c, err)
	}
}

func TestLimits(t *testing.T) {
	big := make([]byte, endpoint.MaxData+1)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"presence ok", endpoint.Presence{Status: endpoint.Busy, Text: strings.Repeat("ü", 255)}.Check(), nil},
		{"presence text", endpoint.Presence{Status: endpoint.Busy, Text: strings.Repeat("x", 256)}.Check(), endpoint.ErrTextTooLong},
		{"presence status", endpoint.Presence{Status: 8}.Check(), endpoint.ErrBadStatus},
		{"app ok", endpoint.Application{ID: "org.example.chat", Description: "Chat", Data: big[:endpoint.MaxData]}.Check(), nil},
		{"app data", endpoint.Application{ID: "chat", Data: big}.Check(), endpoint.ErrDataTooLarge},
		{"app description", endpoint.Application{ID: "chat", Description: strings.Repeat("d", 256)}.Check(), endpoint.ErrTextTooLong},
		{"app id empty", endpoint.Application{}.Check(), endpoint.ErrBadID},
		{"app id long", endpoint.Application{ID: strings.Repeat("a", 65)}.Check(), endpoint.ErrBadID},
		{"app id slash", endpoint.Application{ID: "a/b"}.Check(), endpoint.ErrBadID},
		{"guid id", endpoint.Application{ID: "{dd15f41f-fc4e-4922-b035-4c06a754d01d}"}.Check(), nil},
		{"object ok", endpoint.Object{ID: "pic", Data: big[:endpoint.MaxData]}.Check(), nil},
		{"object empty", endpoint.Object{ID: "pic"}.Check(), endpoint.ErrEmptyData},
		{"object big", endpoint.Object{ID: "pic", Data: big}.Check(), endpoint.ErrDataTooLarge},
		{"name", endpoint.CheckName(strings.Repeat("n", 256)), endpoint.ErrTextTooLong},
		{"name invalid utf-8", endpoint.CheckName("\xff"), endpoint.ErrTextTooLong},
	} {
		if !errors.Is(tc.err, tc.want) || (tc.want == nil && tc.err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	for _, s := range []string{"online", "On-The-Phone", "out_to_lunch", "BeRightBack"} {
		if _, err := endpoint.ParseStatus(s); err != nil {
			t.Errorf("ParseStatus(%q): %v", s, err)
		}
	}
	if _, err := endpoint.ParseStatus("asleep"); !errors.Is(err, endpoint.ErrBadStatus) {
		t.Errorf("ParseStatus(asleep) = %v", err)
	}
}

func TestValidatorAcceptsOnlyTheOwner(t *testing.T) {
	owner, other := peer.ID("owner"), peer.ID("mallory")
	v := endpoint.Validator(owner)
	good, _ := proto.Marshal(&pb.Update{Epoch: 1, Version: 1})
	msg := func(from peer.ID, data []byte) *pubsub.Message {
		return &pubsub.Message{Message: &pubsub_pb.Message{From: []byte(from), Data: data}}
	}
	for _, tc := range []struct {
		name string
		m    *pubsub.Message
		want pubsub.ValidationResult
	}{
		{"owner", msg(owner, good), pubsub.ValidationAccept},
		{"someone else", msg(other, good), pubsub.ValidationReject},
		{"garbage", msg(owner, []byte{0xff, 0xff}), pubsub.ValidationReject},
		{"oversized", msg(owner, make([]byte, endpoint.MaxUpdateSize+1)), pubsub.ValidationReject},
	} {
		if got := v(context.Background(), other, tc.m); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFetch(t *testing.T) {
	mn, err := mocknet.FullMeshConnected(3)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	hs := mn.Hosts()
	host, friend, stranger := hs[0], hs[1], hs[2]
	full := &endpoint.Snapshot{Epoch: 3, Version: 9, Name: "desk", Presence: endpoint.Presence{Status: endpoint.Away, Text: "lunch"}, Full: true,
		Applications: []endpoint.Application{{ID: "chat", Description: "Chat"}},
		Objects:      []endpoint.Object{{ID: "pic", Data: []byte{1, 2}}},
		Keys:         []endpoint.Key{endpoint.NewKey(1, endpoint.Public), endpoint.NewKey(2, endpoint.Full)}}
	srv := endpoint.New(host, endpoint.SnapshotFunc(func(from peer.ID) (*endpoint.Snapshot, error) {
		if from == friend.ID() {
			return full, nil
		}
		return nil, endpoint.ErrBlocked
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := endpoint.Fetch(ctx, friend, host.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "desk" || got.Presence != full.Presence || len(got.Applications) != 1 || len(got.Objects) != 1 || len(got.Keys) != 2 || got.Keys[1] != full.Keys[1] {
		t.Fatalf("snapshot = %+v", got)
	}
	if _, err := endpoint.Fetch(ctx, stranger, host.ID()); !errors.Is(err, endpoint.ErrBlocked) {
		t.Fatalf("blocked fetch: %v", err)
	}
	srv.Close()
	if _, err := endpoint.Fetch(ctx, friend, host.ID()); err == nil {
		t.Fatal("fetch after Close succeeded")
	}
}

func FuzzOpenUpdate(f *testing.F) {
	k := endpoint.NewKey(1, endpoint.Public)
	u, _ := endpoint.Seal(k, "o", 1, 1, &pb.Change{Change: &pb.Change_EndpointName{EndpointName: "x"}})
	data, _ := proto.Marshal(u)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		var u pb.Update
		if proto.Unmarshal(data, &u) != nil {
			return
		}
		endpoint.Open(k, "o", &u)
		endpoint.Next(1, 1, &u)
	})
}

// TestSealPads: sealed changes come in a few sizes only.
func TestSealPads(t *testing.T) {
	k := endpoint.NewKey(1, endpoint.Full)
	sizes := map[int]int{}
	for _, n := range []int{1, 50, 200, 300, 900, 3000, endpoint.MaxData} {
		change := &pb.Change{Change: &pb.Change_ObjectSet{ObjectSet: &pb.Object{Id: "o", Data: bytes.Repeat([]byte{1}, n)}}}
		u, err := endpoint.Seal(k, "owner", 1, 2, change)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := proto.Marshal(u); len(b) > endpoint.MaxUpdateSize {
			t.Fatalf("an update of %d bytes of data is %d bytes, over the cap", n, len(b))
		}
		sizes[len(u.Sealed)]++
		if got, err := endpoint.Open(k, "owner", u); err != nil || !proto.Equal(got, change) {
			t.Fatalf("Open = %v, %v", got, err)
		}
	}
	if len(sizes) != 4 {
		t.Fatalf("sealed sizes %v, want the 4 buckets", sizes)
	}
	// The largest change there is still fits one update.
	biggest := &pb.Change{Change: &pb.Change_ApplicationSet{ApplicationSet: &pb.Application{Id: strings.Repeat("a", endpoint.MaxIDLen),
		Description: strings.Repeat("\U0001F600", endpoint.MaxText), Data: make([]byte, endpoint.MaxData)}}}
	u, err := endpoint.Seal(k, "owner", 1, 2, biggest)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := proto.Marshal(u); len(b) > endpoint.MaxUpdateSize {
		t.Fatalf("the largest change makes an update of %d bytes, over the cap of %d", len(b), endpoint.MaxUpdateSize)
	}
}

// TestPush: a host hands a connected watcher its snapshot; a peer whose
// snapshots are not wanted is cut off before it sends anything, and Push
// never dials.
func TestPush(t *testing.T) {
	mn, err := mocknet.FullMeshLinked(3)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	hs := mn.Hosts()
	host, watcher, stranger := hs[0], hs[1], hs[2]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snap := &endpoint.Snapshot{Epoch: 3, Version: 9, Name: "desk", Full: true,
		Applications: []endpoint.Application{{ID: "chat", Description: "Chat"}},
		Keys:         []endpoint.Key{endpoint.NewKey(1, endpoint.Public), endpoint.NewKey(2, endpoint.Full)}}
	got := make(chan *endpoint.Snapshot, 1)
	stop := endpoint.HandlePush(watcher, func(from peer.ID) bool { return from == host.ID() },
		func(from peer.ID, s *endpoint.Snapshot) { got <- s })
	defer stop()

	if err := endpoint.Push(ctx, host, watcher.ID(), snap); err == nil {
		t.Fatal("Push dialled a peer it was not connected to")
	} else if !errors.Is(err, endpoint.ErrNotConnected) {
		t.Fatalf("push to an unconnected peer: %v", err)
	}
	if _, err := mn.ConnectPeers(host.ID(), watcher.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(stranger.ID(), watcher.ID()); err != nil {
		t.Fatal(err)
	}
	if err := endpoint.Push(ctx, host, watcher.ID(), snap); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.Name != "desk" || !s.Full || len(s.Applications) != 1 || len(s.Keys) != 2 || s.Keys[1] != snap.Keys[1] {
		t.Fatalf("pushed snapshot = %+v", s)
	}
	if err := endpoint.Push(ctx, stranger, watcher.ID(), snap); err == nil {
		t.Fatal("a snapshot from a peer that is not watched was taken")
	}
	select {
	case s := <-got:
		t.Fatalf("accepted from a stranger: %+v", s)
	default:
	}
}
