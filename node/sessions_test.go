package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/session"
)

// waitSession polls a node's view of a session until ok says so.
func waitSession(t testing.TB, n *node.Node, id string, what string, ok func(sessions.View) bool) sessions.View {
	t.Helper()
	var v sessions.View
	var err error
	eventually(t, 15*time.Second, func() bool { v, err = n.Sessions().Get(id); return err == nil && ok(v) },
		func() string { return fmt.Sprintf("%s: session at %s is %+v (%v)", what, n.Identity().ID(), v, err) })
	return v
}

// waitMessages waits until n has delivered want messages of a session.
func waitMessages(t testing.TB, n *node.Node, id string, want int) []sessions.Message {
	t.Helper()
	var ms []sessions.Message
	var err error
	eventually(t, 20*time.Second, func() bool { ms, err = n.Sessions().Messages(id, 0); return err == nil && len(ms) >= want },
		func() string {
			return fmt.Sprintf("%s has %d of %d messages (%v)", n.Identity().ID(), len(ms), want, err)
		})
	return ms
}

func TestSessionFlow(t *testing.T) {
	host := newNode(t, testConfig(t, "Host"))
	var ps []*node.Node
	for i := range 4 {
		p := newNode(t, testConfig(t, fmt.Sprintf("P%d", i)))
		pair(t, host, p)
		register(t, p, publish.RegisteredApp{Application: endpoint.Application{ID: "chat"}})
		ps = append(ps, p)
	}
	outsider := newNode(t, testConfig(t, "Outsider"))
	v, err := host.Sessions().Create("chat")
	if err != nil {
		t.Fatal(err)
	}
	sid := v.ID
	_, recs, err := host.Sessions().Invite(sid, []peer.ID{ps[0].Identity().ID(), ps[1].Identity().ID(), ps[2].Identity().ID(), ps[3].Identity().ID()}, "join", 0)
	if err != nil || len(recs) != 4 {
		t.Fatalf("invite: %v %v", recs, err)
	}
	for i, p := range ps[:3] {
		waitInvitation(t, p, recs[i].ID, invitations.Pending)
	}
	ps[0].Invitations().Accept(recs[0].ID)
	ps[1].Invitations().Accept(recs[1].ID)
	ps[2].Invitations().Decline(recs[2].ID)
	v = waitSession(t, host, sid, "tally", func(v sessions.View) bool {
		return v.Tally != nil && v.Tally.Accepted == 2 && v.Tally.Declined == 1 && len(v.Members) == 3
	})
	if v.Tally.NoAnswer != 1 || len(v.Members) != 3 {
		t.Fatalf("before cancel: %+v %+v", v, v.Tally)
	}
	if _, err := host.Sessions().CancelUnanswered(sid); err != nil {
		t.Fatal(err)
	}
	waitSession(t, host, sid, "cancelled", func(v sessions.View) bool { return v.Standing[ps[3].Identity().ID().String()] == session.Cancelled })
	if _, err := host.Sessions().Start(sid); err != nil {
		t.Fatal(err)
	}
	members := []*node.Node{host, ps[0], ps[1]}
	for _, m := range members[1:] {
		waitSession(t, m, sid, "joined and running", func(v sessions.View) bool { return v.Joined && v.State == session.Running })
	}
	if _, err := ps[2].Sessions().Get(sid); err == nil {
		t.Fatal("a peer that declined has the session")
	}

	// Every member sends; every member receives all, each sender in order.
	const each = 20
	ctx := context.Background()
	for i := range each {
		for j, m := range members {
			if _, err := m.Sessions().Send(ctx, sid, fmt.Appendf(nil, "%d-%d", j, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, m := range members {
		ms := waitMessages(t, m, sid, 3*each)
		last := map[peer.ID]uint64{}
		for _, msg := range ms {
			if msg.Seq != last[msg.Sender]+1 {
				t.Fatalf("%s got %s's message %d after %d", m.Identity().ID(), msg.Sender, msg.Seq, last[msg.Sender])
			}
			last[msg.Sender] = msg.Seq
		}
	}
	// A non-member cannot send, and reads nothing.
	if _, err := outsider.Sessions().Send(ctx, sid, []byte("x")); err == nil {
		t.Fatal("an outsider sent a message")
	}

	// A removed member reads nothing after its removal.
	if _, err := host.Sessions().Remove(sid, ps[1].Identity().ID()); err != nil {
		t.Fatal(err)
	}
	waitSession(t, ps[1], sid, "removed", func(v sessions.View) bool { return v.Me == session.Removed })
	waitSession(t, ps[0], sid, "new epoch", func(v sessions.View) bool { return v.Epoch == 2 && len(v.Members) == 2 })
	removedEv := ps[1].Events()
	defer removedEv.Close()
	if _, err := ps[0].Sessions().Send(ctx, sid, []byte("secret after removal")); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, host, sid, 3*each+1)
	noEvent(t, removedEv, 300*time.Millisecond, sessions.EvtMessage)
	if _, err := ps[1].Sessions().Send(ctx, sid, []byte("x")); err == nil {
		t.Fatal("a removed member sent a message")
	}

	if _, err := host.Sessions().End(sid); err != nil {
		t.Fatal(err)
	}
	waitSession(t, ps[0], sid, "ended", func(v sessions.View) bool { return v.State == session.Ended })
}

// TestSessionMemberRestart: in a session of five, one member stops while
// the others keep talking; when it comes back it catches up, and it lists
// every message of every sender exactly once: those it had before the
// restart (the same, with the same indexes) and those it missed.
func TestSessionMemberRestart(t *testing.T) {
	host := newNode(t, testConfig(t, "Host"))
	var members []*node.Node
	var cfgs []node.Config
	for i := range 4 {
		cfg := testConfig(t, fmt.Sprintf("M%d", i))
		m := newNode(t, cfg)
		pair(t, host, m)
		register(t, m, publish.RegisteredApp{Application: endpoint.Application{ID: "chat"}, AutoAccept: true})
		members, cfgs = append(members, m), append(cfgs, cfg)
	}
	v, err := host.Sessions().Create("chat")
	if err != nil {
		t.Fatal(err)
	}
	sid := v.ID
	var ids []peer.ID
	for _, m := range members {
		ids = append(ids, m.Identity().ID())
	}
	if _, _, err := host.Sessions().Invite(sid, ids, "", 0); err != nil {
		t.Fatal(err)
	}
	waitSession(t, host, sid, "all accepted", func(v sessions.View) bool { return len(v.Members) == 5 })
	host.Sessions().Start(sid)
	for _, m := range members {
		waitSession(t, m, sid, "running", func(v sessions.View) bool { return v.Joined && v.State == session.Running })
	}
	ctx := context.Background()
	talkers := []*node.Node{host, members[0], members[1], members[2]}
	say := func(round int) {
		for j, n := range talkers {
			if _, err := n.Sessions().Send(ctx, sid, fmt.Appendf(nil, "%d-%d", j, round)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for r := range 10 {
		say(r)
	}
	restarting := members[3]
	before := waitMessages(t, restarting, sid, 40)
	addr := restarting.Host().Addrs()[0]
	if err := restarting.Close(); err != nil {
		t.Fatal(err)
	}
	for r := 10; r < 30; r++ {
		say(r)
	}
	cfg := cfgs[3]
	cfg.ListenAddrs = []string{addr.String()}
	back := newNode(t, cfg)
	after := waitMessages(t, back, sid, 120)
	for i, m := range before {
		if a := after[i]; a.Index != m.Index || a.Sender != m.Sender || a.Seq != m.Seq || string(a.Data) != string(m.Data) {
			t.Fatalf("message %d was %+v before the restart, %+v after", i, m, a)
		}
	}
	got := map[peer.ID][]uint64{}
	for _, m := range after {
		got[m.Sender] = append(got[m.Sender], m.Seq)
	}
	for _, n := range talkers {
		seqs := got[n.Identity().ID()]
		if len(seqs) != 30 {
			t.Fatalf("from %s: %d messages across the restart, want 30: %v", n.Identity().ID(), len(seqs), seqs)
		}
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Fatalf("from %s: message %d is seq %d", n.Identity().ID(), i, s)
			}
		}
	}
	// And it can talk again.
	if _, err := back.Sessions().Send(ctx, sid, []byte("back")); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, host, sid, 121)
}
