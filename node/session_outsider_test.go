package node_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

// rpcLog is a pubsub raw tracer that keeps a copy of every RPC received.
type rpcLog struct {
	mu   sync.Mutex
	rpcs []*pubsub_pb.RPC
}

func (l *rpcLog) RecvRPC(rpc *pubsub.RPC) {
	c := proto.Clone(&rpc.RPC).(*pubsub_pb.RPC)
	l.mu.Lock()
	l.rpcs = append(l.rpcs, c)
	l.mu.Unlock()
}

func (l *rpcLog) all() []*pubsub_pb.RPC {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.rpcs)
}

func (*rpcLog) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (*rpcLog) OnClosedOutboundStream(peer.ID)           {}
func (*rpcLog) AddPeer(peer.ID, protocol.ID)             {}
func (*rpcLog) RemovePeer(peer.ID)                       {}
func (*rpcLog) Join(string)                              {}
func (*rpcLog) Leave(string)                             {}
func (*rpcLog) Graft(peer.ID, string)                    {}
func (*rpcLog) Prune(peer.ID, string)                    {}
func (*rpcLog) ValidateMessage(*pubsub.Message)          {}
func (*rpcLog) DeliverMessage(*pubsub.Message)           {}
func (*rpcLog) RejectMessage(*pubsub.Message, string)    {}
func (*rpcLog) DuplicateMessage(*pubsub.Message)         {}
func (*rpcLog) ThrottlePeer(peer.ID)                     {}
func (*rpcLog) SendRPC(*pubsub.RPC, peer.ID)             {}
func (*rpcLog) DropRPC(*pubsub.RPC, peer.ID)             {}
func (*rpcLog) UndeliverableMessage(*pubsub.Message)     {}

// sessionTopics lists the session topics that peers announced to the log's
// owner.
func (l *rpcLog) sessionTopics() []string {
	seen := map[string]bool{}
	var out []string
	for _, rpc := range l.all() {
		for _, sub := range rpc.GetSubscriptions() {
			if t := sub.GetTopicid(); sub.GetSubscribe() && strings.HasPrefix(t, "/peercollab/session/") && !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// outsider is a peer with a plain libp2p host and pubsub, no peercollab
// node: it may subscribe to anything and records everything it receives.
type outsider struct {
	id   *contacts.Identity
	h    host.Host
	ps   *pubsub.PubSub
	log  *rpcLog
	subs []*pubsub.Subscription
}

func newOutsider(t *testing.T, ctx context.Context, floodsub bool) *outsider {
	t.Helper()
	id, err := contacts.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(id.PrivKey()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	o := &outsider{id: id, h: h, log: &rpcLog{}}
	if floodsub {
		o.ps, err = pubsub.NewFloodSub(ctx, h, pubsub.WithRawTracer(o.log))
	} else {
		o.ps, err = pubsub.NewGossipSub(ctx, h, pubsub.WithFloodPublish(true), pubsub.WithRawTracer(o.log))
	}
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// card is the outsider's contact card.
func (o *outsider) card(t *testing.T) []byte {
	t.Helper()
	now := time.Now()
	cert, err := contacts.NewCertificate(o.id, contacts.Profile{DisplayName: "Outsider"}, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := contacts.NewCard(o.id, []*x509.Certificate{cert}, o.h.Addrs(), now)
	if err != nil {
		t.Fatal(err)
	}
	return c.Marshal()
}

func (o *outsider) subscribe(t *testing.T, name string) (*pubsub.Topic, *pubsub.Subscription) {
	t.Helper()
	topic, err := o.ps.Join(name)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	return topic, sub
}

// versions follows an endpoint topic until ctx ends and reports the
// highest update version seen on it.
func versions(t *testing.T, ctx context.Context, sub *pubsub.Subscription) func() uint64 {
	var mu sync.Mutex
	var highest uint64
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	wg.Go(func() {
		for {
			msg, err := sub.Next(ctx)
			if err != nil {
				return
			}
			var u pb.Update
			if proto.Unmarshal(msg.Data, &u) == nil {
				mu.Lock()
				highest = max(highest, u.GetVersion())
				mu.Unlock()
			}
		}
	})
	return func() uint64 { mu.Lock(); defer mu.Unlock(); return highest }
}

// TestSessionOutsider: a peer that is no member of a session but knows its
// ID, is connected to its host and to one of its members, is even a trusted
// contact of both (allowed to watch their endpoint data), subscribes to the
// session's topic (both the one named by the session ID and the real one,
// which it learns from the host's and the member's subscription
// announcements), and asks the session protocol to let it join and fetch.
// It learns no member's ID and not the application: it receives nothing on
// the session's topics and nothing in any answer, whether it speaks
// gossipsub or plain floodsub. What it does see is that the host and the
// member it is connected to subscribe to one (random) topic name, and (over
// gossipsub) the IDs of the messages each of them published there lately.
func TestSessionOutsider(t *testing.T) {
	for _, floodsub := range []bool{false, true} {
		name := "gossipsub"
		if floodsub {
			name = "floodsub"
		}
		t.Run(name, func(t *testing.T) { testSessionOutsider(t, floodsub) })
	}
}

func testSessionOutsider(t *testing.T, floodsub bool) {
	const app = "org.example.hush-hush"
	host, m1, m2 := newNode(t, quickConfig(t, "Host")), newNode(t, quickConfig(t, "M1")), newNode(t, quickConfig(t, "M2"))
	for _, m := range []*node.Node{m1, m2} {
		pair(t, host, m)
		register(t, m, publish.RegisteredApp{Application: endpoint.Application{ID: app}, AutoAccept: true})
	}
	v, err := host.Sessions().Create(app)
	if err != nil {
		t.Fatal(err)
	}
	sid := v.ID
	if _, _, err := host.Sessions().Invite(sid, []peer.ID{m1.Identity().ID(), m2.Identity().ID()}, "", 0); err != nil {
		t.Fatal(err)
	}
	waitSession(t, host, sid, "accepted", func(v sessions.View) bool { return len(v.Members) == 3 })
	if _, err := host.Sessions().Start(sid); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*node.Node{m1, m2} {
		waitSession(t, m, sid, "running", func(v sessions.View) bool { return v.Joined && v.State == session.Running })
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newOutsider(t, ctx, floodsub)
	allowed := contacts.Allowed
	for _, n := range []*node.Node{host, m1} {
		if _, _, _, err := n.AddCard(out.card(t), node.AddOptions{Permission: &allowed}); err != nil {
			t.Fatal(err)
		}
		if err := out.h.Connect(ctx, peer.AddrInfo{ID: n.Identity().ID(), Addrs: n.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	// The real topic's name, from the announcements of the host and m1.
	var topics []string
	eventually(t, 10*time.Second, func() bool { topics = out.log.sessionTopics(); return len(topics) > 0 },
		func() string { return "no session topic announced to the outsider" })
	if len(topics) != 1 || strings.Contains(topics[0], sid) {
		t.Fatalf("announced session topics %q (session %s)", topics, sid)
	}
	var sessionTopics []*pubsub.Topic
	for _, name := range []string{topics[0], psession.Topic(sid)} {
		topic, _ := out.subscribe(t, name)
		sessionTopics = append(sessionTopics, topic)
	}
	eventually(t, 10*time.Second, func() bool { return len(sessionTopics[0].ListPeers()) == 2 },
		func() string {
			return fmt.Sprintf("the outsider sees %v on the session's topic", sessionTopics[0].ListPeers())
		})
	// Anchors: the outsider may watch the host's and m1's endpoint data.
	// An update from each, published after the outsider subscribed to the
	// session topics, shows that they know of its subscriptions; another,
	// published after the session's traffic, that whatever they sent it
	// before has arrived (one stream per peer, in order).
	watchers := map[*node.Node]func() uint64{}
	for _, n := range []*node.Node{host, m1} {
		_, sub := out.subscribe(t, endpoint.Topic(n.Identity().ID()))
		watchers[n] = versions(t, ctx, sub)
	}
	anchor := func(text string) {
		t.Helper()
		for n, highest := range watchers {
			before := highest()
			if err := n.SetPresence(endpoint.Presence{Status: endpoint.Busy, Text: text}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, func() bool { return highest() > before },
				func() string {
					return fmt.Sprintf("no endpoint update from %s reached the outsider", n.Identity().ID())
				})
		}
	}
	anchor("anchor 1")

	// The session's traffic: messages of every member, a removal (a new
	// roster and epoch), heartbeats, more messages.
	sctx := context.Background()
	for i := range 3 {
		for _, n := range []*node.Node{host, m1, m2} {
			if _, err := n.Sessions().Send(sctx, sid, fmt.Appendf(nil, "secret %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, n := range []*node.Node{host, m1, m2} {
		waitMessages(t, n, sid, 9)
	}
	if _, err := host.Sessions().Remove(sid, m2.Identity().ID()); err != nil {
		t.Fatal(err)
	}
	waitSession(t, m1, sid, "new epoch", func(v sessions.View) bool { return v.Epoch == 2 })
	if _, err := m1.Sessions().Send(sctx, sid, []byte("after the removal")); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, host, sid, 10)

	// The stream protocol: join, fetch, post, leave, at the host and at m1.
	// Asked over the wire as it is (the answers' bytes are looked at), as
	// the typed client functions (what they return is looked at).
	var answers []*pb.SessionResponse
	ask := func(to peer.ID, r *pb.SessionRequest) {
		t.Helper()
		r.SessionId = sid
		resp, err := rawSessionRequest(ctx, out.h, to, r)
		if err != nil {
			t.Fatalf("request to %s: %v", to, err)
		}
		answers = append(answers, resp)
	}
	forged, err := psession.Seal(sid, out.id.PrivKey().Sign, out.h.ID(), 1, psession.NewKey(2), []byte("forged"))
	if err != nil {
		t.Fatal(err)
	}
	forgedPB := &pb.SessionData{SessionId: forged.Session, Sender: []byte(forged.Sender), Seq: forged.Seq, Epoch: forged.Epoch,
		Sealed: forged.Sealed, Signature: forged.Signature}
	for _, to := range []peer.ID{host.Identity().ID(), m1.Identity().ID()} {
		ask(to, &pb.SessionRequest{Msg: &pb.SessionRequest_Join{Join: &pb.SessionJoin{}}})
		ask(to, &pb.SessionRequest{Msg: &pb.SessionRequest_Join{Join: &pb.SessionJoin{InvitationId: "0123456789abcdef0123456789abcdef"}}})
		for _, sender := range []peer.ID{host.Identity().ID(), m1.Identity().ID(), out.h.ID()} {
			ask(to, &pb.SessionRequest{Msg: &pb.SessionRequest_Fetch{Fetch: &pb.SessionFetch{Sender: []byte(sender), From: 1, To: 100}}})
		}
		ask(to, &pb.SessionRequest{Msg: &pb.SessionRequest_Post{Post: &pb.SessionPost{Data: forgedPB}}})
		ask(to, &pb.SessionRequest{Msg: &pb.SessionRequest_Leave{Leave: &pb.SessionLeave{}}})

		refusals := map[string]error{"post": psession.Post(ctx, out.h, to, forged), "leave": psession.Leave(ctx, out.h, to, sid)}
		_, refusals["join"] = psession.Join(ctx, out.h, to, sid, "")
		_, refusals["fetch"] = psession.Fetch(ctx, out.h, to, sid, host.Identity().ID(), 1, 100)
		for what, err := range refusals {
			if !errors.Is(err, psession.ErrUnknown) {
				t.Errorf("%s at %s: %v, want %v", what, to, err, psession.ErrUnknown)
			}
		}
	}
	// What it publishes on the real topic, sealed with a key of its own,
	// reaches no one's application.
	env, err := psession.SealTopic(sid, psession.NewKey(2), psession.TopicMessage{Data: &forged})
	if err != nil {
		t.Fatal(err)
	}
	if err := sessionTopics[0].Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
	anchor("anchor 2")

	secrets := map[string][]byte{"the application ID": []byte(app)}
	for name, n := range map[string]*node.Node{"the host": host, "m1": m1, "m2": m2} {
		id := n.Identity().ID()
		secrets[name+"'s ID"] = []byte(id)
		secrets[name+"'s ID in text"] = []byte(id.String())
	}
	for i, r := range answers {
		if r.GetStatus() != pb.SessionResponse_UNKNOWN {
			t.Errorf("answer %d: %v, want UNKNOWN", i, r)
		}
		b, _ := proto.Marshal(r)
		for what, secret := range secrets {
			if bytes.Contains(b, secret) {
				t.Errorf("answer %d names %s", i, what)
			}
		}
	}
	rpcs := out.log.all()
	gossiped := 0
	for i, rpc := range rpcs {
		// The anchors' own updates (and the gossip about them) come from
		// the host and m1, whom the outsider may watch: set them aside.
		rest := proto.Clone(rpc).(*pubsub_pb.RPC)
		rest.Subscriptions = nil
		for _, sub := range rpc.GetSubscriptions() {
			// The host and m1 announce their own endpoint topics, named by
			// their IDs, which the outsider dialled.
			if owner, err := endpoint.TopicOwner(sub.GetTopicid()); err != nil || (owner != host.Identity().ID() && owner != m1.Identity().ID()) {
				rest.Subscriptions = append(rest.Subscriptions, sub)
			}
		}
		rest.Publish = nil
		for _, m := range rpc.GetPublish() {
			if _, err := endpoint.TopicOwner(m.GetTopic()); err != nil {
				rest.Publish = append(rest.Publish, m)
				t.Errorf("RPC %d: a message on %s from %s", i, m.GetTopic(), peer.ID(m.GetFrom()))
			}
		}
		if c := rest.GetControl(); c != nil {
			for _, g := range c.GetGraft() {
				if !strings.HasPrefix(g.GetTopicID(), "/peercollab/endpoint/") {
					t.Errorf("RPC %d: grafted on %s", i, g.GetTopicID())
				}
			}
			// Gossip (IHAVE) goes to every subscriber, filter or not; its
			// message IDs name the publisher. Since no node passes on
			// another's messages on a session topic, the publisher is the
			// peer that gossips, which the outsider dialled.
			for _, ih := range c.GetIhave() {
				for _, mid := range ih.GetMessageIDs() {
					if !strings.HasPrefix(mid, string(host.Identity().ID())) && !strings.HasPrefix(mid, string(m1.Identity().ID())) {
						t.Errorf("RPC %d: gossip about %s names another publisher", i, ih.GetTopicID())
					}
				}
				if !strings.HasPrefix(ih.GetTopicID(), "/peercollab/endpoint/") {
					gossiped += len(ih.GetMessageIDs())
				}
			}
			c.Ihave = nil
		}
		b, _ := proto.Marshal(rest)
		for what, secret := range secrets {
			if bytes.Contains(b, secret) {
				t.Errorf("RPC %d names %s: %v", i, what, rest)
			}
		}
	}
	if ms, _ := host.Sessions().Messages(sid, 0); len(ms) != 10 {
		t.Errorf("the host delivered %d messages, want the members' 10", len(ms))
	}
	t.Logf("the outsider received %d RPCs and %d answers; it saw %v subscribed to %s, and gossip of %d of their own messages there",
		len(rpcs), len(answers), sessionTopics[0].ListPeers(), topics[0], gossiped)
}

// rawSessionRequest sends a session request as it is and returns the
// answer as it came, whatever its status.
func rawSessionRequest(ctx context.Context, h host.Host, p peer.ID, r *pb.SessionRequest) (*pb.SessionResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, psession.Timeout)
	defer cancel()
	s, err := h.NewStream(ctx, p, psession.ID)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(psession.Timeout))
	if err := pbio.NewDelimitedWriter(s).WriteMsg(r); err != nil {
		s.Reset()
		return nil, err
	}
	s.CloseWrite()
	var resp pb.SessionResponse
	if err := pbio.NewDelimitedReader(s, psession.MaxResponseSize).ReadMsg(&resp); err != nil {
		s.Reset()
		return nil, err
	}
	return &resp, nil
}
