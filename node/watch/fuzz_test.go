package watch

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
)

// hostile is a host that answers snapshot requests with whatever it is
// told to.
type hostile struct {
	watcher, host host.Host
	mu            sync.Mutex
	answer        []byte
}

func newHostile(f *testing.F) *hostile {
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mn.Close() })
	h := &hostile{watcher: mn.Hosts()[0], host: mn.Hosts()[1]}
	h.host.SetStreamHandler(endpoint.ID, func(s network.Stream) {
		s.SetDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, io.LimitReader(s, 1<<10))
		h.mu.Lock()
		b := h.answer
		h.mu.Unlock()
		s.Write(b)
		s.Close()
	})
	return h
}

func (h *hostile) set(answer []byte) {
	h.mu.Lock()
	h.answer = answer
	h.mu.Unlock()
}

// watcher returns a new service and a watcher of the hostile host.
func (h *hostile) newWatcher() *watcher {
	s := New(Config{Host: h.watcher, Hub: events.NewHub(), Connect: func(context.Context, peer.ID) error { return nil }})
	s.entries[h.host.ID()] = &Entry{Peer: h.host.ID(), Watching: true}
	return &watcher{s: s, p: h.host.ID(), cancel: func() {}, ended: make(chan struct{}), updates: make(chan *pb.Update, updatesCap)}
}

func delimited(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	return append(protowire.AppendVarint(nil, uint64(len(b))), b...)
}

// frames splits b into length-delimited pieces (what is left over is one
// more piece).
func frames(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return append(out, b)
		}
		out = append(out, v)
		b = b[n:]
	}
	return out
}

func honestSnapshot() *pb.Snapshot {
	pub, full := endpoint.NewKey(1, endpoint.Public), endpoint.NewKey(1, endpoint.Full)
	return &pb.Snapshot{Epoch: 5, Version: 2, EndpointName: "desk", Presence: &pb.Presence{Status: pb.Presence_ONLINE}, Full: true,
		Applications: []*pb.Application{{Id: "chat", Description: "Chat"}},
		Objects:      []*pb.Object{{Id: "pic", Data: []byte{1}}},
		Keys:         []*pb.TopicKey{{Id: pub.ID, Tier: pub.Tier, Key: pub.Secret[:]}, {Id: full.ID, Tier: full.Tier, Key: full.Secret[:]}}}
}

// checkEntry fails t unless what the watcher holds of its host is within
// every limit of endpoint data, sorted by ID with no ID twice.
func checkEntry(t *testing.T, w *watcher) {
	t.Helper()
	e, ok := w.s.Get(w.p)
	if !ok {
		t.Fatal("no entry")
	}
	d := e.Data
	if endpoint.CheckName(d.Name) != nil || d.Presence.Check() != nil {
		t.Fatalf("name %q, presence %+v", d.Name, d.Presence)
	}
	if len(d.Applications) > endpoint.MaxApplications || len(d.Objects) > endpoint.MaxObjects {
		t.Fatalf("%d applications, %d objects", len(d.Applications), len(d.Objects))
	}
	for i, a := range d.Applications {
		if a.Check() != nil || (i > 0 && d.Applications[i-1].ID >= a.ID) {
			t.Fatalf("applications %+v", d.Applications)
		}
	}
	for i, o := range d.Objects {
		if o.Check() != nil || (i > 0 && d.Objects[i-1].ID >= o.ID) {
			t.Fatalf("objects %+v", d.Objects)
		}
	}
}

func changeSeeds() []byte {
	var b []byte
	for _, c := range []*pb.Change{
		{Change: &pb.Change_EndpointName{EndpointName: "lap"}},
		{Change: &pb.Change_Presence{Presence: &pb.Presence{Status: pb.Presence_BUSY, Text: "x"}}},
		{Change: &pb.Change_ApplicationSet{ApplicationSet: &pb.Application{Id: "a"}}},
		{Change: &pb.Change_ApplicationRemoved{ApplicationRemoved: "chat"}},
		{Change: &pb.Change_ObjectSet{ObjectSet: &pb.Object{Id: "z", Data: []byte{2}}}},
		{Change: &pb.Change_ObjectRemoved{ObjectRemoved: "pic"}},
		{},
	} {
		b = append(b, delimited(c)...)
	}
	return b
}

// FuzzWatchSnapshot: a hostile host hands a watcher any snapshot, then any
// changes, sealed with the keys the snapshot gave (so that the watcher opens
// and applies them). Whatever it sends, the watcher's view of it stays
// within the limits of endpoint data, sorted, with no ID twice.
func FuzzWatchSnapshot(f *testing.F) {
	h := newHostile(f)
	for _, seed := range [][]byte{delimited(honestSnapshot()), delimited(&pb.Snapshot{Epoch: 1}), {0x02, 0x08, 0x01}, {}} {
		f.Add(seed, changeSeeds())
	}
	many := make([]byte, 0)
	for i := range endpoint.MaxApplications + 2 {
		many = append(many, delimited(&pb.Change{Change: &pb.Change_ApplicationSet{ApplicationSet: &pb.Application{Id: "app" + strings.Repeat("x", i)}}})...)
	}
	f.Add(delimited(honestSnapshot()), many)
	f.Fuzz(func(t *testing.T, snap, changes []byte) {
		h.set(snap)
		w := h.newWatcher()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if w.resync(ctx) != nil {
			return
		}
		checkEntry(t, w)
		for _, raw := range frames(changes) {
			var c pb.Change
			if proto.Unmarshal(raw, &c) != nil {
				continue
			}
			tier := endpoint.Full
			key, ok := w.keys[tier]
			if !ok {
				tier = endpoint.Public
				if key, ok = w.keys[tier]; !ok {
					return
				}
			}
			u, err := endpoint.Seal(key, w.p, w.epoch, w.version+1, &c)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.handle(ctx, u); err != nil {
				return
			}
			checkEntry(t, w)
		}
	})
}

// FuzzWatchTopic: whatever arrives on a watched host's topic, from the
// host or anyone else, goes through the watcher's validator and, if taken,
// is handled; the watcher's view stays within the limits, and nothing but
// the host's own messages is ever taken.
func FuzzWatchTopic(f *testing.F) {
	h := newHostile(f)
	h.set(delimited(honestSnapshot()))
	key := endpoint.NewKey(1, endpoint.Full)
	seal := func(version uint64, c *pb.Change) []byte {
		u, _ := endpoint.Seal(key, h.host.ID(), 5, version, c)
		b, _ := proto.Marshal(u)
		return b
	}
	for _, seed := range [][]byte{
		seal(3, &pb.Change{Change: &pb.Change_EndpointName{EndpointName: "lap"}}),
		seal(3, nil),
		seal(9, nil),
		seal(2, nil),
		{0x08, 0x05, 0x10, 0x03, 0x2a, 0x01, 0x00},
		bytes.Repeat([]byte{0xff}, 40),
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, fromHost bool) {
		w := h.newWatcher()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.resync(ctx); err != nil {
			t.Fatal(err)
		}
		w.keys[endpoint.Full] = key // the key the seeds are sealed with
		from := h.host.ID()
		if !fromHost {
			from = peer.ID("someone else") // the validator must refuse
		}
		msg := &pubsub.Message{Message: &pubsub_pb.Message{From: []byte(from), Data: data}, ReceivedFrom: from}
		r := w.validator()(ctx, from, msg)
		if !slices.Contains([]pubsub.ValidationResult{pubsub.ValidationReject, pubsub.ValidationIgnore}, r) {
			t.Fatalf("validator said %v: gossipsub would pass the update on", r)
		}
		select {
		case u := <-w.updates:
			if !fromHost {
				t.Fatal("took an update the host did not publish")
			}
			w.handle(ctx, u)
		default:
		}
		checkEntry(t, w)
	})
}
