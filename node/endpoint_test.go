package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/watch"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// befriend makes b a contact of a, with permission perm.
func befriend(t testing.TB, a, b *node.Node, perm contacts.WatcherPermission) {
	t.Helper()
	c, err := b.MyCard()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.AddCard(c.Marshal(), node.AddOptions{Permission: &perm}); err != nil {
		t.Fatal(err)
	}
}

// waitEvent waits for an event of typ whose JSON contains every want.
func waitEvent(t testing.TB, s *events.Sub, typ string, want ...string) events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("no %s event with %q: %v", typ, want, err)
		}
		if ev.Type != typ {
			continue
		}
		data, _ := json.Marshal(ev.Data)
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(string(data), w)
		}
		if ok {
			return ev
		}
	}
}

// noEvent checks that no event containing text arrives within d.
func noEvent(t *testing.T, s *events.Sub, d time.Duration, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			return
		}
		data, _ := json.Marshal(ev)
		if strings.Contains(string(data), text) {
			t.Fatalf("unexpected event: %s", data)
		}
	}
}

func waitState(t testing.TB, n *node.Node, p peer.ID, st watch.State) watch.Entry {
	t.Helper()
	var e watch.Entry
	eventually(t, 15*time.Second, func() bool { e, _ = n.Watch().Get(p); return e.State == st },
		func() string { return fmt.Sprintf("watch of %s is %q (%s), want %q", p, e.State, e.Error, st) })
	return e
}

// quickConfig is testConfig with a short endpoint heartbeat, so that a
// watcher that hears nothing more notices within seconds.
func quickConfig(t testing.TB, name string) node.Config {
	cfg := testConfig(t, name)
	cfg.Heartbeat = time.Second
	return cfg
}

func TestWatchPermissions(t *testing.T) {
	host, friend, foe := newNode(t, quickConfig(t, "Host")), newNode(t, quickConfig(t, "Friend")), newNode(t, quickConfig(t, "Foe"))
	befriend(t, host, friend, contacts.Allowed)
	befriend(t, host, foe, contacts.Blocked)
	befriend(t, friend, host, contacts.Allowed)
	befriend(t, foe, host, contacts.Allowed)
	if err := host.Publish().RegisterApp(publish.RegisteredApp{Application: endpoint.Application{ID: "chat", Description: "Chat"}, Launch: "secret-cmd"}); err != nil {
		t.Fatal(err)
	}
	if err := host.Publish().SetObject(endpoint.Object{ID: "pic", Data: []byte("picture")}); err != nil {
		t.Fatal(err)
	}
	friendEv, foeEv := friend.Events(), foe.Events()
	defer friendEv.Close()
	defer foeEv.Close()
	hid := host.Identity().ID()
	if err := friend.WatchPeer(hid); err != nil {
		t.Fatal(err)
	}
	if err := foe.WatchPeer(hid); err != nil {
		t.Fatal(err)
	}
	e := waitState(t, friend, hid, watch.Following)
	if !e.Data.Full || len(e.Data.Applications) != 1 || len(e.Data.Objects) != 1 {
		t.Fatalf("friend's snapshot: %+v", e.Data)
	}
	if c, _ := friend.Contacts().Get(hid); !c.Watch {
		t.Fatal("watching a contact does not set its watch flag")
	}
	waitState(t, foe, hid, watch.Failing)

	if err := host.SetPresence(endpoint.Presence{Status: endpoint.Busy, Text: "for-friends"}); err != nil {
		t.Fatal(err)
	}
	host.Publish().SetObject(endpoint.Object{ID: "doc", Data: []byte("hello")})
	waitEvent(t, friendEv, watch.EvtPresence, "for-friends")
	waitEvent(t, friendEv, watch.EvtObject, `"doc"`)
	noEvent(t, foeEv, 500*time.Millisecond, "for-friends")
	if e, _ := foe.Watch().Get(hid); strings.Contains(e.Error, "secret") || len(e.Data.Objects) != 0 {
		t.Fatalf("foe learned: %+v", e)
	}

	// Blocking the friend changes the keys and stops the updates: it hears
	// nothing more, and the snapshot it then asks for is refused.
	blocked := contacts.Blocked
	if _, err := host.UpdateContact(friend.Identity().ID(), node.AddOptions{Permission: &blocked}); err != nil {
		t.Fatal(err)
	}
	waitState(t, friend, hid, watch.Failing)
	host.SetPresence(endpoint.Presence{Status: endpoint.Away, Text: "after-block"})
	noEvent(t, friendEv, 500*time.Millisecond, "after-block")
}

func TestOwnDataLimits(t *testing.T) {
	n := newNode(t, testConfig(t, "Host"))
	p := n.Publish()
	if err := n.SetPresence(endpoint.Presence{Status: endpoint.Offline}); err == nil {
		t.Fatal("set offline while signed in")
	}
	for i := range endpoint.MaxApplications {
		if err := p.RegisterApp(publish.RegisteredApp{Application: endpoint.Application{ID: "app" + string(rune('A'+i%26)) + string(rune('a'+i/26))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.RegisterApp(publish.RegisteredApp{Application: endpoint.Application{ID: "one-more"}}); err == nil {
		t.Fatal("registered a 65th application")
	}
	if err := p.RegisterApp(publish.RegisteredApp{Application: endpoint.Application{ID: "appAa"}}); err == nil {
		t.Fatal("registered a duplicate application")
	}
	for i := range endpoint.MaxObjects {
		if err := p.SetObject(endpoint.Object{ID: "o" + strings.Repeat("x", i%60) + string(rune('a'+i/60)), Data: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.SetObject(endpoint.Object{ID: "too-many", Data: []byte{1}}); err == nil {
		t.Fatal("published a 129th object")
	}
	// Signing out unpublishes the objects; applications stay registered.
	if err := n.SignOut(context.Background(), node.ScopeAll); err != nil {
		t.Fatal(err)
	}
	if len(p.Objects()) != 0 || len(p.Apps()) != endpoint.MaxApplications {
		t.Fatalf("after sign-out: %d objects, %d apps", len(p.Objects()), len(p.Apps()))
	}
	if err := p.SetObject(endpoint.Object{ID: "x", Data: []byte{1}}); err == nil {
		t.Fatal("published an object while signed out")
	}
	if _, pres := p.Profile(); pres.Status != endpoint.Offline {
		t.Fatalf("presence after sign-out: %v", pres)
	}
}

// TestBlockedWatcherHearsNothing: a watcher that the host blocks, speaking
// gossipsub or plain floodsub and staying subscribed to the host's topic,
// connected to the host and to another watcher, receives none of the
// updates the host publishes from then on, while the other watcher (a node
// still allowed) receives them all.
func TestBlockedWatcherHearsNothing(t *testing.T) {
	for _, floodsub := range []bool{false, true} {
		name := "gossipsub"
		if floodsub {
			name = "floodsub"
		}
		t.Run(name, func(t *testing.T) { testBlockedWatcher(t, floodsub) })
	}
}

func testBlockedWatcher(t *testing.T, floodsub bool) {
	host, friend := newNode(t, quickConfig(t, "Host")), newNode(t, quickConfig(t, "Friend"))
	hid := host.Identity().ID()
	pair(t, host, friend)
	friendEv := friend.Events()
	defer friendEv.Close()
	if err := friend.WatchPeer(hid); err != nil {
		t.Fatal(err)
	}
	waitState(t, friend, hid, watch.Following)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	foe := newOutsider(t, ctx, floodsub)
	allowed := contacts.Allowed
	if _, _, _, err := host.AddCard(foe.card(t), node.AddOptions{Permission: &allowed}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node.Node{host, friend} {
		if err := foe.h.Connect(ctx, peer.AddrInfo{ID: n.Identity().ID(), Addrs: n.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	_, sub := foe.subscribe(t, endpoint.Topic(hid))
	highest := versions(t, ctx, sub)
	presence := func(text string) uint64 {
		t.Helper()
		if err := host.SetPresence(endpoint.Presence{Status: endpoint.Busy, Text: text}); err != nil {
			t.Fatal(err)
		}
		return host.Publish().Snapshot().Version
	}
	// Allowed, the foe hears the host: the host knows its subscription.
	v := presence("before")
	eventually(t, 10*time.Second, func() bool { return highest() >= v },
		func() string { return fmt.Sprintf("version %d did not reach the foe (it has %d)", v, highest()) })

	blocked := contacts.Blocked
	if _, err := host.UpdateContact(foe.h.ID(), node.AddOptions{Permission: &blocked}); err != nil {
		t.Fatal(err)
	}
	atBlock := host.Publish().Snapshot().Version
	for i := range 5 {
		presence(fmt.Sprintf("after %d", i))
	}
	waitEvent(t, friendEv, watch.EvtPresence, "after 4")
	if got := highest(); got > atBlock {
		t.Fatalf("the blocked watcher got version %d; the block came at %d", got, atBlock)
	}
}
