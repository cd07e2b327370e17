package endpoint_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
)

// delimited frames m as the snapshot protocol does.
func delimited(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	return append(protowire.AppendVarint(nil, uint64(len(b))), b...)
}

// snapshotSeeds are answers a host might give, honest and otherwise.
func snapshotSeeds() [][]byte {
	k1, k2 := endpoint.NewKey(1, endpoint.Public), endpoint.NewKey(2, endpoint.Full)
	full := &pb.Snapshot{Epoch: 3, Version: 9, EndpointName: "desk", Presence: &pb.Presence{Status: pb.Presence_AWAY, Text: "lunch"}, Full: true,
		Applications: []*pb.Application{{Id: "chat", Description: "Chat", Data: []byte{1}}, {Id: "draw"}},
		Objects:      []*pb.Object{{Id: "pic", Data: []byte{1, 2}}},
		Keys:         []*pb.TopicKey{{Id: k1.ID, Tier: k1.Tier, Key: k1.Secret[:]}, {Id: k2.ID, Tier: k2.Tier, Key: k2.Secret[:]}}}
	twice := proto.Clone(full).(*pb.Snapshot)
	twice.Applications = append(twice.Applications, &pb.Application{Id: "chat"})
	badKey := proto.Clone(full).(*pb.Snapshot)
	badKey.Keys[0].Tier = 7
	return [][]byte{
		delimited(full),
		delimited(&pb.Snapshot{Epoch: 1, Version: 1}),
		delimited(&pb.Snapshot{Refusal: pb.Snapshot_BLOCKED}),
		delimited(&pb.Snapshot{Refusal: 99}),
		delimited(twice),
		delimited(badKey),
		delimited(&pb.Snapshot{EndpointName: string([]byte{0xff, 0xfe})}),
		{0xff, 0xff, 0xff, 0xff, 0x0f},
		{},
	}
}

// FuzzSnapshot: a hostile host answers a snapshot request with anything.
// Fetch returns an error or a snapshot within every limit of endpoint data
// (sizes, counts, no ID twice, well-formed keys); it never hangs or panics.
func FuzzSnapshot(f *testing.F) {
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mn.Close() })
	watcher, host := mn.Hosts()[0], mn.Hosts()[1]
	var mu sync.Mutex
	var answer []byte
	host.SetStreamHandler(endpoint.ID, func(s network.Stream) {
		s.SetDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, io.LimitReader(s, 1<<10))
		mu.Lock()
		b := answer
		mu.Unlock()
		s.Write(b)
		s.Close()
	})
	for _, seed := range snapshotSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		mu.Lock()
		answer = b
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		snap, err := endpoint.Fetch(ctx, watcher, host.ID())
		if err != nil {
			return
		}
		if endpoint.CheckName(snap.Name) != nil || snap.Presence.Check() != nil {
			t.Fatalf("name %q, presence %+v", snap.Name, snap.Presence)
		}
		if len(snap.Applications) > endpoint.MaxApplications || len(snap.Objects) > endpoint.MaxObjects || len(snap.Keys) > 2 {
			t.Fatalf("%d applications, %d objects, %d keys", len(snap.Applications), len(snap.Objects), len(snap.Keys))
		}
		ids := map[string]bool{}
		for _, a := range snap.Applications {
			if a.Check() != nil || ids["a"+a.ID] {
				t.Fatalf("application %+v", a)
			}
			ids["a"+a.ID] = true
		}
		for _, o := range snap.Objects {
			if o.Check() != nil || ids["o"+o.ID] {
				t.Fatalf("object %+v", o)
			}
			ids["o"+o.ID] = true
		}
		for _, k := range snap.Keys {
			if k.Tier != endpoint.Public && k.Tier != endpoint.Full {
				t.Fatalf("key of tier %v", k.Tier)
			}
		}
	})
}
