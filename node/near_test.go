package node_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/internal/nstest"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// nearConfig is a node on loopback, signed in to People Near Me, that
// announces itself every second (so that it is dropped 4 s after it
// vanishes).
func nearConfig(t testing.TB, name string) node.Config {
	cfg := testConfig(t, name)
	cfg.Scope = "all"
	cfg.NearInterval = time.Second
	return cfg
}

func TestPeopleNearMe(t *testing.T) {
	if !nstest.Enter(t) {
		return
	}
	a, b, c := newNode(t, nearConfig(t, "Alice")), newNode(t, nearConfig(t, "Bob")), newNode(t, nearConfig(t, "Carol"))
	aEv, bEv := a.Events(), b.Events()
	defer aEv.Close()
	defer bEv.Close()
	// Everyone lists everyone else, with names and presence.
	// waitNear waits until n lists exactly the people named in want, online.
	waitNear := func(n *node.Node, want map[string]bool) {
		t.Helper()
		got := map[string]bool{}
		eventually(t, 10*time.Second, func() bool {
			people, err := n.Near().List()
			if err != nil {
				return false
			}
			got = map[string]bool{}
			for _, p := range people {
				if p.Presence.Status == endpoint.Online {
					got[p.DisplayName] = true
				}
			}
			return maps.Equal(got, want)
		}, func() string { return fmt.Sprintf("near list %v (online), want %v", got, want) })
	}
	waitNear(a, map[string]bool{"Bob": true, "Carol": true})
	waitNear(b, map[string]bool{"Alice": true, "Carol": true})
	waitNear(c, map[string]bool{"Alice": true, "Bob": true})

	// A presence change reaches the people near.
	if err := a.SetPresence(endpoint.Presence{Status: endpoint.Busy, Text: "call"}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, bEv, near.EvtChanged, `"updated"`, `"busy"`, `"call"`)

	// A near peer that is not a contact sees the public profile only.
	if err := a.Publish().RegisterApp(publish.RegisteredApp{Application: endpoint.Application{ID: "chat", Description: "Chat"}}); err != nil {
		t.Fatal(err)
	}
	e, err := b.EndpointData(context.Background(), a.Identity().ID())
	if err != nil {
		t.Fatal(err)
	}
	if e.Data.Full || len(e.Data.Applications) != 0 || e.Data.Presence.Status != endpoint.Busy {
		t.Fatalf("stranger near sees %+v", e.Data)
	}
	// Once contacts (from the near list, no file exchanged), it sees all.
	if _, _, _, err := a.AddNear("Bob", node.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.AddNear("alice", node.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	e, err = b.EndpointData(context.Background(), a.Identity().ID())
	if err != nil || !e.Data.Full || len(e.Data.Applications) != 1 {
		t.Fatalf("contact near sees %+v, %v", e.Data, err)
	}
	if c, _ := b.Contacts().Get(a.Identity().ID()); c.LastSeen.IsZero() {
		t.Error("a contact added from the near list has no last-seen time")
	}

	// Signing out removes the node from the others' lists at once.
	start := time.Now()
	if err := c.SignOut(context.Background(), node.ScopeNearMe); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, aEv, near.EvtChanged, `"deleted"`, `"Carol"`)
	t.Logf("sign-out seen after %v", time.Since(start))
	if _, err := c.Near().List(); err == nil {
		t.Error("a node signed out of People Near Me still lists people")
	}

	// A node that goes away without a bye (it stops announcing) is dropped
	// too, when three announcements are missed.
	start = time.Now()
	b.Near().Close()
	waitEvent(t, aEv, near.EvtChanged, `"deleted"`, `"Bob"`)
	t.Logf("vanished node dropped after %v", time.Since(start))
	_ = contacts.Added
}
