package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/internal/nstest"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/watch"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// waitFull waits until n's watch of p follows p's full data with apps
// applications, and returns how long that took.
func waitFull(t *testing.T, n *node.Node, p peer.ID, apps int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var e watch.Entry
	eventually(t, timeout, func() bool {
		e, _ = n.Watch().Get(p)
		return e.State == watch.Following && e.Data.Full && len(e.Data.Applications) == apps
	}, func() string {
		return fmt.Sprintf("after %v the watch of %s is %q (%s), full %v, %d applications; want full with %d",
			timeout, p, e.State, e.Error, e.Data.Full, len(e.Data.Applications), apps)
	})
	return time.Since(start)
}

// TestWatchFollowsTrust: Alice watches Bob while only near (public tier);
// when they add each other she gets his applications and objects at once,
// without watching again; his removal of her takes them away, adding her
// again gives them back, and a block cuts her off.
func TestWatchFollowsTrust(t *testing.T) {
	if !nstest.Enter(t) {
		return
	}
	a, b := newNode(t, nearConfig(t, "Alice")), newNode(t, nearConfig(t, "Bob"))
	bid, aid := b.Identity().ID(), a.Identity().ID()
	if err := b.Publish().RegisterApp(publish.RegisteredApp{Application: endpoint.Application{ID: "chat", Description: "Chat"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish().SetObject(endpoint.Object{ID: "notes", Data: []byte("shared")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { _, ok := a.Near().Get(bid); _, ok2 := b.Near().Get(aid); return ok && ok2 },
		func() string { return "alice and bob do not see each other near" })
	// On loopback the announcements carry no address worth dialling.
	a.Host().Peerstore().AddAddrs(bid, b.Host().Addrs(), time.Hour)
	b.Host().Peerstore().AddAddrs(aid, a.Host().Addrs(), time.Hour)
	aEv := a.Events()
	defer aEv.Close()
	if err := a.WatchPeer(bid); err != nil {
		t.Fatal(err)
	}
	e := waitState(t, a, bid, watch.Following)
	if e.Data.Full || len(e.Data.Applications) != 0 {
		t.Fatalf("alice, only near, sees %+v", e.Data)
	}

	if _, _, _, err := a.AddNear("Bob", node.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.AddNear("Alice", node.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	took := waitFull(t, a, bid, 1, 2*time.Second)
	t.Logf("the watch upgraded %v after bob added alice", took)
	waitEvent(t, aEv, watch.EvtObject, `"notes"`)
	if err := b.Publish().RegisterApp(publish.RegisteredApp{Application: endpoint.Application{ID: "board", Description: "Board"}}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, aEv, watch.EvtApplication, `"board"`)

	// Removed, she is someone near again: the public tier only.
	if err := b.Contacts().Remove(aid); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { e, _ = a.Watch().Get(bid); return e.State == watch.Following && !e.Data.Full },
		func() string { return fmt.Sprintf("alice, removed, still sees %+v", e.Data) })
	if len(e.Data.Applications) != 0 || len(e.Data.Objects) != 0 {
		t.Fatalf("alice, removed, keeps %+v", e.Data)
	}
	// Added again: everything at once.
	if _, _, _, err := b.AddNear("Alice", node.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFull(t, a, bid, 2, 2*time.Second)

	// Blocked: refused.
	blocked := contacts.Blocked
	if _, err := b.UpdateContact(aid, node.AddOptions{Permission: &blocked}); err != nil {
		t.Fatal(err)
	}
	b.SetPresence(endpoint.Presence{Status: endpoint.Busy, Text: "after-block"})
	b.Publish().SetObject(endpoint.Object{ID: "secret", Data: []byte("s")})
	noEvent(t, aEv, time.Second, "secret")
	if e, _ := a.Watch().Get(bid); len(e.Data.Objects) != 1 {
		t.Fatalf("alice, blocked, holds %+v", e.Data.Objects)
	}
	// Unblocked: handed everything again.
	allowed := contacts.Allowed
	if _, err := b.UpdateContact(aid, node.AddOptions{Permission: &allowed}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, func() bool { e, _ = a.Watch().Get(bid); return e.State == watch.Following && len(e.Data.Objects) == 2 },
		func() string { return fmt.Sprintf("alice, unblocked, sees %+v (%s)", e.Data, e.State) })
}

// TestWatchRefusedThenTrusted: a stranger refused by the host is handed the
// host's data as soon as the host adds it, without waiting the retry after
// a refusal.
func TestWatchRefusedThenTrusted(t *testing.T) {
	a, b := newNode(t, quickConfig(t, "Alice")), newNode(t, quickConfig(t, "Bob"))
	bid := b.Identity().ID()
	if err := b.Publish().RegisterApp(publish.RegisteredApp{Application: endpoint.Application{ID: "chat", Description: "Chat"}}); err != nil {
		t.Fatal(err)
	}
	befriend(t, a, b, contacts.Allowed)
	if err := a.WatchPeer(bid); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, bid, watch.Failing)
	befriend(t, b, a, contacts.Allowed)
	took := waitFull(t, a, bid, 1, 5*time.Second)
	t.Logf("followed %v after the host added the watcher", took)
}
