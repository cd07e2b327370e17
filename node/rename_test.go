package node_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/internal/nstest"
)

// TestSetProfileReachesContacts: a renamed node's connected contacts see
// the new name at once, one that was away when it connects; trust is
// unchanged, and a nickname of the user's own stays.
func TestSetProfileReachesContacts(t *testing.T) {
	alice, bob, carol := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Carol"))
	aid := alice.Identity().ID()
	for _, n := range []*node.Node{bob, carol} {
		befriend(t, alice, n, contacts.Allowed)
		befriend(t, n, alice, contacts.Allowed)
	}
	nick := "ally"
	if _, err := carol.UpdateContact(aid, node.AddOptions{Nickname: &nick}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bob.Connect(ctx, peer.AddrInfo{ID: aid, Addrs: alice.Addrs()}); err != nil {
		t.Fatal(err)
	}
	aliceEv := alice.Events()
	defer aliceEv.Close()

	me, err := alice.SetProfile(contacts.Profile{DisplayName: "Alicia", Email: "alicia@example.org"})
	if err != nil || me.DisplayName != "Alicia" {
		t.Fatalf("SetProfile: %+v %v", me, err)
	}
	waitEvent(t, aliceEv, "me.changed", `"Alicia"`)
	if info, _ := alice.Info(); info.DisplayName != "Alicia" || info.PeerID != aid {
		t.Fatalf("Info after the rename: %+v", info)
	}
	if c, _ := alice.MyCard(); c.Profile().DisplayName != "Alicia" || c.PeerID() != aid {
		t.Fatalf("card after the rename: %+v", c.Profile())
	}
	var c *contacts.Contact
	eventually(t, 5*time.Second, func() bool { c, _ = bob.Contacts().Get(aid); return c.DisplayName == "Alicia" },
		func() string { return fmt.Sprintf("bob's contact: %+v", c) })
	if c.Nickname != "Alicia" || c.Email != "alicia@example.org" {
		t.Fatalf("bob's contact renamed: %+v", c)
	}
	mine, _ := alice.MyCard()
	if chk, err := bob.CheckCard(mine.Marshal()); err != nil || !chk.Trust.Trusted {
		t.Fatalf("bob's trust in the renamed card: %+v %v", chk, err)
	}

	// Carol was not connected: she hears of it when she connects.
	if c, _ := carol.Contacts().Get(aid); c.DisplayName != "Alice" {
		t.Fatalf("carol heard of the rename without a connection: %+v", c)
	}
	if err := carol.Connect(ctx, peer.AddrInfo{ID: aid, Addrs: alice.Addrs()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { c, _ = carol.Contacts().Get(aid); return c.DisplayName == "Alicia" },
		func() string { return fmt.Sprintf("carol's contact: %+v", c) })
	if c.Nickname != "ally" {
		t.Fatalf("carol's own nickname was replaced: %+v", c)
	}

	if _, err := alice.SetProfile(contacts.Profile{DisplayName: "Alicia", Email: "alicia@example.org"}); !errors.Is(err, contacts.ErrSameProfile) {
		t.Fatalf("the same profile again: %v", err)
	}
}

// TestRenameSeenWhenAddingNear: a contact who fetches a renamed person's
// card from People Near Me takes the new name from it, and the add itself
// is refused, changing nothing else (the person is a contact already).
func TestRenameSeenWhenAddingNear(t *testing.T) {
	if !nstest.Enter(t) {
		return
	}
	a, b := newNode(t, nearConfig(t, "Alice")), newNode(t, nearConfig(t, "Bob"))
	aid := a.Identity().ID()
	befriend(t, b, a, contacts.Allowed)
	// On loopback the announcements carry no address worth dialling.
	b.Host().Peerstore().AddAddrs(aid, a.Host().Addrs(), time.Hour)
	if _, err := a.SetProfile(contacts.Profile{DisplayName: "Alicia"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { p, ok := b.Near().Get(aid); return ok && p.DisplayName == "Alicia" },
		func() string { return "bob does not see alicia near" })
	if c, _ := b.Contacts().Get(aid); c.DisplayName != "Alice" {
		t.Fatalf("bob's contact renamed without a card: %+v", c)
	}
	_, _, _, err := b.AddNear("Alicia", node.AddOptions{})
	if !errors.Is(err, contacts.ErrContactExists) {
		t.Fatalf("adding a contact again from near: %v", err)
	}
	if c, _ := b.Contacts().Get(aid); c.DisplayName != "Alicia" || c.Nickname != "Alicia" {
		t.Fatalf("bob's contact after fetching her card: %+v", c)
	}
}
