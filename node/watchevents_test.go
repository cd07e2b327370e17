package node_test

import (
	"context"
	"errors"
	"testing"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/watch"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// TestWatchEventsAndForget: a watch added and removed is a watch-list
// event; its first snapshot, and a refresh, end in a request event, with
// the error of a refused one; the data a refresh or an ended watch left is
// dropped on request, never a watched peer's.
func TestWatchEventsAndForget(t *testing.T) {
	a, b, stranger := newNode(t, quickConfig(t, "Alice")), newNode(t, quickConfig(t, "Bob")), newNode(t, quickConfig(t, "Stranger"))
	befriend(t, a, b, contacts.Allowed)
	befriend(t, b, a, contacts.Allowed)
	befriend(t, a, stranger, contacts.Allowed) // she knows him, he does not know her
	bid, sid := b.Identity().ID(), stranger.Identity().ID()
	ev := a.Events()
	defer ev.Close()

	if err := a.WatchPeer(bid); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, watch.EvtWatchList, `"added"`, bid.String())
	waitEvent(t, ev, watch.EvtRequestDone, `"subscribe"`, `"ok":true`, `"full":true`, bid.String())
	if err := a.ForgetEndpointData(bid); !errors.Is(err, watch.ErrWatched) {
		t.Fatalf("forget a watched peer: %v", err)
	}
	if err := a.UnwatchPeer(bid); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, watch.EvtWatchList, `"deleted"`, bid.String())
	if err := a.ForgetEndpointData(bid); err != nil {
		t.Fatalf("forget: %v", err)
	}
	if _, ok := a.Watch().Get(bid); ok {
		t.Fatal("forgotten data still there")
	}
	if err := a.ForgetEndpointData(bid); !errors.Is(err, watch.ErrNoData) {
		t.Fatalf("forget twice: %v", err)
	}

	// A refresh ends in a request event, refused or not.
	if _, err := a.EndpointData(context.Background(), bid); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, watch.EvtRequestDone, `"refresh"`, `"ok":true`, bid.String())
	if _, err := a.EndpointData(context.Background(), sid); !errors.Is(err, endpoint.ErrNotAllowed) {
		t.Fatalf("refresh of one who does not know her: %v", err)
	}
	waitEvent(t, ev, watch.EvtRequestDone, `"refresh"`, `"ok":false`, "only the host's contacts", sid.String())
	// And a watch refused from the start, in a subscribe event.
	if err := a.WatchPeer(sid); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, watch.EvtRequestDone, `"subscribe"`, `"ok":false`, sid.String())
}
