package node_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/invite"
)

// pair makes a and b contacts of each other.
func pair(t testing.TB, a, b *node.Node) {
	t.Helper()
	befriend(t, a, b, contacts.Allowed)
	befriend(t, b, a, contacts.Allowed)
}

func register(t testing.TB, n *node.Node, app publish.RegisteredApp) {
	t.Helper()
	if err := n.Publish().RegisterApp(app); err != nil {
		t.Fatal(err)
	}
}

func send(t testing.TB, from *node.Node, to *node.Node, req invitations.Request) invitations.Record {
	t.Helper()
	recs, err := from.Invitations().Send([]peer.ID{to.Identity().ID()}, req)
	if err != nil {
		t.Fatal(err)
	}
	return recs[0]
}

// waitInvitation waits until invitation id at n is in state st.
func waitInvitation(t testing.TB, n *node.Node, id string, st invitations.State) invitations.Record {
	t.Helper()
	var r invitations.Record
	var err error
	eventually(t, 15*time.Second, func() bool { r, err = n.Invitations().Get(id); return err == nil && r.State == st },
		func() string {
			return fmt.Sprintf("invitation %s at %s is %q (%v), want %q", id, n.Identity().ID(), r.State, err, st)
		})
	return r
}

func TestInvitationAcceptLaunches(t *testing.T) {
	a, b := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob"))
	pair(t, a, b)
	marker := filepath.Join(t.TempDir(), "launched")
	register(t, b, publish.RegisteredApp{Application: endpoint.Application{ID: "chat", Description: "Chat"},
		Launch: "echo \"$PEERCOLLAB_INVITATION $PEERCOLLAB_APP $PEERCOLLAB_INVITER\" > " + marker})
	sent := send(t, a, b, invitations.Request{AppID: "chat", Message: "join me", Data: []byte{1, 2}})
	got := waitInvitation(t, b, sent.ID, invitations.Pending)
	if got.Message != "join me" || !got.Trusted || got.Peer != a.Identity().ID() || len(got.Card) == 0 {
		t.Fatalf("received %+v", got)
	}
	waitInvitation(t, a, sent.ID, invitations.Delivered)
	if _, err := b.Invitations().Accept(sent.ID[:8]); err != nil {
		t.Fatal(err)
	}
	waitInvitation(t, a, sent.ID, invitations.Accepted)
	var out []byte
	eventually(t, 10*time.Second, func() bool { out, _ = os.ReadFile(marker); return len(out) > 0 },
		func() string { return "the launch command did not run" })
	if want := sent.ID + " chat " + a.Identity().ID().String(); strings.TrimSpace(string(out)) != want {
		t.Fatalf("launched with %q, want %q", out, want)
	}
	if _, err := b.Invitations().Decline(sent.ID); !errors.Is(err, invitations.ErrAnswered) {
		t.Fatalf("declining an accepted invitation: %v", err)
	}
}

func TestInvitationDeclineCancelExpire(t *testing.T) {
	a, b := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob"))
	pair(t, a, b)
	register(t, b, publish.RegisteredApp{Application: endpoint.Application{ID: "chat"}})

	declined := send(t, a, b, invitations.Request{AppID: "chat"})
	waitInvitation(t, b, declined.ID, invitations.Pending)
	if _, err := b.Invitations().Decline(declined.ID); err != nil {
		t.Fatal(err)
	}
	waitInvitation(t, a, declined.ID, invitations.Declined)

	cancelled := send(t, a, b, invitations.Request{AppID: "chat"})
	waitInvitation(t, a, cancelled.ID, invitations.Delivered)
	if _, err := a.Invitations().Cancel(cancelled.ID); err != nil {
		t.Fatal(err)
	}
	waitInvitation(t, b, cancelled.ID, invitations.Cancelled)
	if _, err := b.Invitations().Accept(cancelled.ID); !errors.Is(err, invitations.ErrAnswered) {
		t.Fatalf("accepting a cancelled invitation: %v", err)
	}
	if _, err := a.Invitations().Cancel(cancelled.ID); !errors.Is(err, invitations.ErrAnswered) {
		t.Fatalf("cancelling twice: %v", err)
	}

	expiring := send(t, a, b, invitations.Request{AppID: "chat", Expiry: 300 * time.Millisecond})
	waitInvitation(t, a, expiring.ID, invitations.Expired)
	waitInvitation(t, b, expiring.ID, invitations.Expired)
	if _, err := b.Invitations().Accept(expiring.ID); !errors.Is(err, invitations.ErrAnswered) {
		t.Fatalf("accepting an expired invitation: %v", err)
	}

	unregistered := send(t, a, b, invitations.Request{AppID: "nosuch"})
	r := waitInvitation(t, a, unregistered.ID, invitations.Declined)
	if r.Reason != invite.AppNotRegistered {
		t.Fatalf("reason %v", r.Reason)
	}
	if _, err := b.Invitations().Get(unregistered.ID); err == nil {
		t.Fatal("the invitee stored an invitation it declined by itself")
	}
	tally := invitations.Count(a.Invitations().List(invitations.Filter{Direction: invitations.Sent}))
	if tally != (invitations.Tally{Total: 4, Declined: 2, Cancelled: 1, Expired: 1}) {
		t.Fatalf("tally %+v", tally)
	}
}

func TestInvitationPolicy(t *testing.T) {
	a, b, stranger := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Stranger"))
	pair(t, a, b)
	befriend(t, stranger, b, contacts.Allowed) // the stranger knows Bob; Bob does not know it
	register(t, b, publish.RegisteredApp{Application: endpoint.Application{ID: "chat"}})

	anyone := send(t, stranger, b, invitations.Request{AppID: "chat"})
	if r := waitInvitation(t, b, anyone.ID, invitations.Pending); r.Trusted {
		t.Fatal("a stranger's invitation is marked trusted")
	}
	if err := b.SetInvitationPolicy(invitations.Contacts); err != nil {
		t.Fatal(err)
	}
	refused := send(t, stranger, b, invitations.Request{AppID: "chat"})
	if r := waitInvitation(t, stranger, refused.ID, invitations.Declined); r.Reason != invite.NotAccepting {
		t.Fatalf("reason %v", r.Reason)
	}
	fromContact := send(t, a, b, invitations.Request{AppID: "chat"})
	waitInvitation(t, b, fromContact.ID, invitations.Pending)
	b.SetInvitationPolicy(invitations.Nobody)
	nobody := send(t, a, b, invitations.Request{AppID: "chat"})
	if r := waitInvitation(t, a, nobody.ID, invitations.Declined); r.Reason != invite.NotAccepting {
		t.Fatalf("reason %v", r.Reason)
	}
}

// TestInviterRestart: the inviter stops while its invitation is pending;
// the invitee accepts meanwhile; the restarted inviter records the answer.
func TestInviterRestart(t *testing.T) {
	acfg := testConfig(t, "Alice")
	a, b := newNode(t, acfg), newNode(t, testConfig(t, "Bob"))
	pair(t, a, b)
	register(t, b, publish.RegisteredApp{Application: endpoint.Application{ID: "chat"}})
	sent := send(t, a, b, invitations.Request{AppID: "chat"})
	waitInvitation(t, a, sent.ID, invitations.Delivered)
	addrs := a.Host().Addrs()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Invitations().Accept(sent.ID); err != nil {
		t.Fatal(err)
	}
	// Same home, same port: the invitee's retries find the inviter again.
	acfg.ListenAddrs = []string{addrs[0].String()}
	a2 := newNode(t, acfg)
	waitInvitation(t, a2, sent.ID, invitations.Accepted)
	// The inviter records the answer before its acknowledgement reaches
	// the invitee, so wait for that too.
	var r invitations.Record
	eventually(t, 10*time.Second, func() bool {
		r, _ = b.Invitations().Get(sent.ID)
		return r.Unacked == ""
	}, func() string { return fmt.Sprintf("the invitee still has %q to deliver", r.Unacked) })
}

// TestNotPartyIgnored: a response or cancel from a peer that is not party
// to the invitation changes nothing.
func TestNotPartyIgnored(t *testing.T) {
	a, b, mallory := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Mallory"))
	pair(t, a, b)
	register(t, b, publish.RegisteredApp{Application: endpoint.Application{ID: "chat"}})
	sent := send(t, a, b, invitations.Request{AppID: "chat"})
	waitInvitation(t, b, sent.ID, invitations.Pending)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, target := range []*node.Node{a, b} {
		mallory.Host().Connect(ctx, peer.AddrInfo{ID: target.Identity().ID(), Addrs: target.Host().Addrs()})
	}
	ack, err := invite.Respond(ctx, mallory.Host(), a.Identity().ID(), invite.Response{InvitationID: sent.ID, Action: invite.Accepted})
	if err != nil || !errors.Is(ack.Err(), invite.ErrNotParty) {
		t.Fatalf("forged response: %+v, %v", ack, err)
	}
	ack, err = invite.Cancel(ctx, mallory.Host(), b.Identity().ID(), sent.ID)
	if err != nil || !errors.Is(ack.Err(), invite.ErrNotParty) {
		t.Fatalf("forged cancel: %+v, %v", ack, err)
	}
	if r, _ := a.Invitations().Get(sent.ID); r.State != invitations.Delivered {
		t.Fatalf("inviter's invitation is %s after a forged response", r.State)
	}
	if r, _ := b.Invitations().Get(sent.ID); r.State != invitations.Pending {
		t.Fatalf("invitee's invitation is %s after a forged cancel", r.State)
	}
}

func TestInvitationLimits(t *testing.T) {
	a, b := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob"))
	for name, req := range map[string]invitations.Request{
		"message":  {AppID: "chat", Message: strings.Repeat("m", invite.MaxMessage+1)},
		"data":     {AppID: "chat", Data: make([]byte, invite.MaxData+1)},
		"app id":   {AppID: "no/slashes"},
		"too long": {AppID: "chat", Expiry: invite.MaxExpiry + time.Second},
	} {
		if _, err := a.Invitations().Send([]peer.ID{b.Identity().ID()}, req); err == nil {
			t.Errorf("%s: sent", name)
		}
	}
	if _, err := a.Invitations().Send([]peer.ID{a.Identity().ID()}, invitations.Request{AppID: "chat"}); !errors.Is(err, invitations.ErrSelf) {
		t.Errorf("self-invitation: %v", err)
	}
}

// TestStrangerInboxFull: a stranger may keep only a few unanswered
// invitations at a node; beyond them the inviter records an error with
// the reason "inbox full", while a contact's invitation still arrives.
func TestStrangerInboxFull(t *testing.T) {
	a, b, stranger := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Stranger"))
	pair(t, a, b)
	befriend(t, stranger, b, contacts.Allowed) // the stranger knows Bob; Bob does not know it
	register(t, b, publish.RegisteredApp{Application: endpoint.Application{ID: "chat"}})
	for range invitations.DefaultPerPeer {
		sent := send(t, stranger, b, invitations.Request{AppID: "chat", Data: make([]byte, invite.MaxData), Expiry: time.Hour})
		r := waitInvitation(t, b, sent.ID, invitations.Pending)
		if r.Expires.After(time.Now().Add(invitations.DefaultStrangerExpiry)) {
			t.Fatalf("a stranger's invitation is kept until %v", r.Expires)
		}
	}
	over := send(t, stranger, b, invitations.Request{AppID: "chat"})
	if r := waitInvitation(t, stranger, over.ID, invitations.Error); r.Reason != invite.InboxFull {
		t.Fatalf("reason %q", r.Reason)
	}
	if _, err := b.Invitations().Get(over.ID); err == nil {
		t.Fatal("the invitee stored an invitation beyond the stranger's share")
	}
	fromContact := send(t, a, b, invitations.Request{AppID: "chat"})
	waitInvitation(t, b, fromContact.ID, invitations.Pending)
}
