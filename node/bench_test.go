package node_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/internal/nstest"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/node/watch"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/invite"
	"github.com/peercollab/peercollab/session"
)

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// warmUp lets gossipsub heartbeats graft the meshes before a measurement,
// for ours and the raw baseline alike: a fixed warm-up period, not a wait
// for something that could be observed.
func warmUp() { <-time.After(1500 * time.Millisecond) }

func rawHost(tb testing.TB) host.Host {
	tb.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

// rawStar builds the raw gossipsub baseline: a hub and n leaves connected
// to it, all on topic "bench" with flood publishing (as ours uses), each
// leaf subscribed. It returns the hub's topic and each leaf's topic and
// subscription once the hub sees every leaf on the topic.
func rawStar(b *testing.B, ctx context.Context, n int) (hub *pubsub.Topic, leaves []*pubsub.Topic, subs []*pubsub.Subscription) {
	b.Helper()
	join := func(h host.Host) *pubsub.Topic {
		ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithFloodPublish(true))
		if err != nil {
			b.Fatal(err)
		}
		t, err := ps.Join("bench")
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	hubH := rawHost(b)
	hub = join(hubH)
	for range n {
		h := rawHost(b)
		t := join(h)
		sub, err := t.Subscribe()
		if err != nil {
			b.Fatal(err)
		}
		leaves, subs = append(leaves, t), append(subs, sub)
		if err := h.Connect(ctx, peer.AddrInfo{ID: hubH.ID(), Addrs: hubH.Addrs()}); err != nil {
			b.Fatal(err)
		}
	}
	eventually(b, 30*time.Second, func() bool { return len(hub.ListPeers()) == n }, func() string { return "raw subscribers missing" })
	return hub, leaves, subs
}

// rawRound publishes payload on pub and times its arrival at each receiver.
// One that does not have it within wait counts as lost, with latency wait.
func rawRound(ctx context.Context, pub *pubsub.Topic, receivers []*pubsub.Subscription, payload []byte, wait time.Duration) (lat []time.Duration, lost int) {
	var wg sync.WaitGroup
	lat = make([]time.Duration, len(receivers))
	t0 := time.Now()
	for i, s := range receivers {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			if _, err := s.Next(rctx); err != nil {
				lat[i] = wait
				return
			}
			lat[i] = time.Since(t0)
		})
	}
	pub.Publish(ctx, payload)
	wg.Wait()
	for _, l := range lat {
		if l == wait {
			lost++
		}
	}
	return lat, lost
}

type foundFunc func(peer.AddrInfo)

func (f foundFunc) HandlePeerFound(ai peer.AddrInfo) { f(ai) }

// BenchmarkSignInUntilListed measures the time from a node's sign-in to
// People Near Me until a neighbour lists it with its profile, against raw
// go-libp2p mDNS discovery (a fresh host starting mDNS until either side's
// HandlePeerFound fires) measured in the same run. It runs in a network
// namespace of its own (needs root).
func BenchmarkSignInUntilListed(b *testing.B) {
	if !nstest.Enter(b) {
		return
	}
	var raw, ours []time.Duration

	// Raw: a listening host with mDNS; per round a new host starts mDNS.
	// rawFull also connects and makes one 64-byte round trip, the least a
	// raw go-libp2p application needs to learn a neighbour's profile.
	listener := rawHost(b)
	listener.SetStreamHandler("/bench/echo", func(s network.Stream) {
		buf := make([]byte, 64)
		io.ReadFull(s, buf)
		s.Write(buf)
		s.Close()
	})
	var rawFull []time.Duration
	found := make(chan peer.ID, 16)
	lm := mdns.NewMdnsService(listener, "_bench._udp", foundFunc(func(ai peer.AddrInfo) { found <- ai.ID }))
	if err := lm.Start(); err != nil {
		b.Fatal(err)
	}
	defer lm.Close()
	rounds := max(b.N, 20)
	for range rounds {
		h := rawHost(b)
		m := mdns.NewMdnsService(h, "_bench._udp", foundFunc(func(ai peer.AddrInfo) {
			if ai.ID == listener.ID() {
				select {
				case found <- h.ID():
				default:
				}
			}
		}))
		t0 := time.Now()
		if err := m.Start(); err != nil {
			b.Fatal(err)
		}
	wait:
		for {
			select {
			case got := <-found:
				if got == h.ID() {
					break wait
				}
			case <-time.After(10 * time.Second):
				b.Fatal("raw mDNS found nothing within 10 s")
			}
		}
		raw = append(raw, time.Since(t0))
		func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.Connect(ctx, peer.AddrInfo{ID: listener.ID(), Addrs: listener.Addrs()}); err != nil {
				b.Fatal(err)
			}
			s, err := h.NewStream(ctx, listener.ID(), "/bench/echo")
			if err != nil {
				b.Fatal(err)
			}
			s.Write(make([]byte, 64))
			io.ReadFull(s, make([]byte, 64))
			s.Close()
		}()
		rawFull = append(rawFull, time.Since(t0))
		m.Close()
		h.Close()
		for len(found) > 0 {
			<-found
		}
	}

	// Ours: a signed-in node lists a neighbour that signs in, then out.
	a := newNode(b, nearBenchConfig(b, "Lister", "all"))
	bn := newNode(b, nearBenchConfig(b, "Joiner", "none"))
	ev := a.Events()
	defer ev.Close()
	id := bn.Identity().ID().String()
	for range rounds {
		t0 := time.Now()
		if err := bn.SignIn(context.Background(), node.ScopeNearMe); err != nil {
			b.Fatal(err)
		}
		waitEvent(b, ev, near.EvtChanged, `"added"`, id, `"online"`)
		ours = append(ours, time.Since(t0))
		if err := bn.SignOut(context.Background(), node.ScopeNearMe); err != nil {
			b.Fatal(err)
		}
		waitEvent(b, ev, near.EvtChanged, `"deleted"`, id)
	}
	b.ReportMetric(ms(percentile(raw, 50)), "raw-ms-p50")
	b.ReportMetric(ms(percentile(rawFull, 50)), "rawconn-ms-p50")
	b.ReportMetric(ms(percentile(ours, 50)), "ms-p50")
	b.ReportMetric(ms(percentile(ours, 90)), "ms-p90")
	b.ReportMetric(float64(percentile(ours, 50))/float64(percentile(raw, 50)), "x-raw-p50")
	b.ReportMetric(float64(percentile(ours, 50))/float64(percentile(rawFull, 50)), "x-rawconn-p50")
	fmt.Printf("sign-in until listed, %d rounds: ours p50 %.2f ms p90 %.2f ms max %.2f ms; raw mDNS discovery p50 %.2f ms p90 %.2f ms; raw discovery+connect+round trip p50 %.2f ms p90 %.2f ms\n",
		rounds, ms(percentile(ours, 50)), ms(percentile(ours, 90)), ms(percentile(ours, 100)),
		ms(percentile(raw, 50)), ms(percentile(raw, 90)), ms(percentile(rawFull, 50)), ms(percentile(rawFull, 90)))
}

func nearBenchConfig(tb testing.TB, name, scope string) node.Config {
	cfg := node.DefaultConfig(filepath.Join(tb.TempDir(), name))
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Profile = contacts.Profile{DisplayName: name}
	cfg.Scope = scope
	return cfg
}

// BenchmarkPresenceToWatchers measures a presence change until each of 100
// watchers has it (its event stream shows it), against raw gossipsub in the
// same run: one publisher and 100 subscribers connected to it, with the
// same flood publishing, timing delivery of a message of the same size.
func BenchmarkPresenceToWatchers(b *testing.B) {
	const watchers = 100
	rounds := max(b.N, 30)

	// Raw gossipsub.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	topic, _, rawSubs := rawStar(b, ctx, watchers)
	warmUp()
	var rawLat, rawAll []time.Duration
	payload := make([]byte, 120) // about the size of a sealed presence update
	for range rounds {
		lat, _ := rawRound(ctx, topic, rawSubs, payload, 10*time.Second)
		rawLat = append(rawLat, lat...)
		rawAll = append(rawAll, slices.Max(lat))
	}

	// Ours: 100 watchers, trusted contacts allowed to watch.
	hn := newNode(b, testConfig(b, "Host"))
	hid := hn.Identity().ID()
	var ws []*node.Node
	var evs []*events.Sub
	for i := range watchers {
		w := newNode(b, testConfig(b, fmt.Sprintf("W%d", i)))
		befriend(b, hn, w, contacts.Allowed)
		befriend(b, w, hn, contacts.Allowed)
		ev := w.Events()
		b.Cleanup(func() { ev.Close() })
		if err := w.WatchPeer(hid); err != nil {
			b.Fatal(err)
		}
		ws, evs = append(ws, w), append(evs, ev)
	}
	for _, w := range ws {
		waitState(b, w, hid, watch.Following)
	}
	var ourLat, ourAll []time.Duration
	for r := range rounds {
		text := fmt.Sprintf("round-%d", r)
		var wg sync.WaitGroup
		lat := make([]time.Duration, watchers)
		t0 := time.Now()
		for i, ev := range evs {
			wg.Go(func() {
				waitEvent(b, ev, watch.EvtPresence, text)
				lat[i] = time.Since(t0)
			})
		}
		if err := hn.SetPresence(endpoint.Presence{Status: endpoint.Busy, Text: text}); err != nil {
			b.Fatal(err)
		}
		wg.Wait()
		ourLat = append(ourLat, lat...)
		ourAll = append(ourAll, slices.Max(lat))
	}
	b.ReportMetric(ms(percentile(ourLat, 99)), "ms-p99")
	b.ReportMetric(ms(percentile(rawLat, 99)), "raw-ms-p99")
	b.ReportMetric(float64(percentile(ourLat, 99))/float64(percentile(rawLat, 99)), "x-raw-p99")
	fmt.Printf("presence to %d watchers, %d rounds: per watcher p50 %.2f ms p99 %.2f ms, all %d p50 %.2f ms p99 %.2f ms; raw gossipsub per subscriber p50 %.2f ms p99 %.2f ms, all p50 %.2f ms p99 %.2f ms\n",
		watchers, rounds, ms(percentile(ourLat, 50)), ms(percentile(ourLat, 99)), watchers, ms(percentile(ourAll, 50)), ms(percentile(ourAll, 99)),
		ms(percentile(rawLat, 50)), ms(percentile(rawLat, 99)), ms(percentile(rawAll, 50)), ms(percentile(rawAll, 99)))
}

// envRemoteInvitee makes the test binary run an invitee node for
// BenchmarkInviteRTT in a process of its own (see runRemoteInvitee).
const envRemoteInvitee = "PEERCOLLAB_BENCH_INVITEE_HOME"

// envRemoteRelay gives the remote invitee a relay to keep a reservation on.
const envRemoteRelay = "PEERCOLLAB_BENCH_INVITEE_RELAY"

// runRemoteInvitee runs an invitee node: it trusts the card in
// HOME/inviter.contact, registers an auto-accepted application "bench",
// writes its card to HOME/invitee.contact and runs until stdin closes.
func runRemoteInvitee(home string) {
	cfg := node.DefaultConfig(home)
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Profile = contacts.Profile{DisplayName: "Invitee"}
	cfg.Scope = "internet"
	cfg.InvitationsPerMinute, cfg.InvitationBurst = 1e9, 1e6
	if relay := os.Getenv(envRemoteRelay); relay != "" {
		cfg.StaticRelays = []string{relay}
	}
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer n.Close()
	inviter, err := os.ReadFile(filepath.Join(home, "inviter.contact"))
	if err == nil {
		_, _, _, err = n.AddCard(inviter, node.AddOptions{})
	}
	if err == nil {
		err = n.Publish().RegisterApp(publish.RegisteredApp{Application: endpoint.Application{ID: "bench"}, AutoAccept: true})
	}
	var c *contacts.Card
	if err == nil {
		c, err = n.MyCard()
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(home, "invitee.contact"), c.Marshal(), 0o600)
	}
	if err == nil && cfg.StaticRelays != nil {
		err = waitReserved(n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}

// waitReserved waits until n holds its reservation on its relay: before
// that, a circuit to n is refused (NO_RESERVATION).
func waitReserved(n *node.Node) error {
	deadline := time.After(20 * time.Second)
	for {
		if rs := n.Relays(); len(rs) > 0 && rs[0].Reserved {
			return nil
		}
		select {
		case <-deadline:
			return fmt.Errorf("no reservation on the relay within 20s: %+v", n.Relays())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startRemoteInvitee runs an invitee node in a process of its own (see
// runRemoteInvitee), a contact of a with an auto-accepted application
// "bench", keeping a reservation on relay when given; it returns its peer
// ID. The process ends with the benchmark.
func startRemoteInvitee(b *testing.B, a *node.Node, relay string) peer.ID {
	home := b.TempDir()
	mine, err := a.MyCard()
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, "inviter.contact"), mine.Marshal(), 0o600)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envRemoteInvitee+"="+home, envRemoteRelay+"="+relay)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("invitee did not start: %q %v", line, err)
	}
	card, err := os.ReadFile(filepath.Join(home, "invitee.contact"))
	if err != nil {
		b.Fatal(err)
	}
	c, _, _, err := a.AddCard(card, node.AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return c.PeerID
}

// pingRTTs measures the raw round trips to p, rounds of each: libp2p ping
// on one stream, and a ping on a new stream each time, the floor of any
// request/response protocol. (go-libp2p allows a peer two inbound ping
// streams; one closing may still count, and then the new one is refused:
// that try is repeated.)
func pingRTTs(b *testing.B, ctx context.Context, h host.Host, p peer.ID, rounds int) (oneStream, newStream []time.Duration) {
	b.Helper()
	pctx, cancel := context.WithCancel(ctx)
	pings := ping.Ping(pctx, h, p)
	for range rounds {
		r := <-pings
		if r.Error != nil {
			b.Fatal(r.Error)
		}
		oneStream = append(oneStream, r.RTT)
	}
	cancel()
	for refused := 0; len(newStream) < rounds; {
		sctx, scancel := context.WithCancel(ctx)
		t0 := time.Now()
		ch := ping.Ping(sctx, h, p)
		r := <-ch
		d := time.Since(t0)
		scancel()
		for range ch { // the stream is closed when the channel is
		}
		if r.Error != nil {
			if refused++; refused > rounds {
				b.Fatal(r.Error)
			}
			continue
		}
		newStream = append(newStream, d)
	}
	return oneStream, newStream
}

// BenchmarkInviteRTT measures an invitation until its auto-accepted
// response, against a libp2p ping round trip on the same connection, in the
// same run: end to end (Send until the inviter's "accepted" event) and on
// the wire (the protocol's request until its acknowledgement, which carries
// the acceptance). The invitee runs in a process of its own, as it would.
func BenchmarkInviteRTT(b *testing.B) {
	a := newNode(b, testConfig(b, "Inviter"))
	invitee := startRemoteInvitee(b, a, "")
	ev := a.Events()
	defer ev.Close()
	// Warm up: connect, and let identify learn the protocols.
	recs, err := a.Invitations().Send([]peer.ID{invitee}, invitations.Request{AppID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	waitInvitation(b, a, recs[0].ID, invitations.Accepted)

	rounds := max(b.N, 200)
	pingRTT, streamRTT := pingRTTs(b, context.Background(), a.Host(), invitee, rounds)
	var wireRTT, endRTT []time.Duration
	for range rounds {
		t0 := time.Now()
		recs, err := a.Invitations().Send([]peer.ID{invitee}, invitations.Request{AppID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		waitEvent(b, ev, invitations.EvtChanged, recs[0].ID, `"accepted"`)
		endRTT = append(endRTT, time.Since(t0))
	}
	now := time.Now()
	mine, _ := a.MyCard()
	for range rounds {
		inv := invite.Invitation{ID: invite.NewID(), AppID: "bench", Sent: now, Expires: now.Add(time.Minute), InviterCard: mine.Marshal()}
		t0 := time.Now()
		ack, err := invite.Invite(context.Background(), a.Host(), invitee, inv)
		if err != nil || ack.Response == nil || ack.Response.Action != invite.Accepted {
			b.Fatalf("wire invite: %+v, %v", ack, err)
		}
		wireRTT = append(wireRTT, time.Since(t0))
	}
	b.ReportMetric(ms(percentile(endRTT, 50)), "invite-ms-p50")
	b.ReportMetric(ms(percentile(wireRTT, 50)), "wire-ms-p50")
	b.ReportMetric(ms(percentile(pingRTT, 50)), "ping-ms-p50")
	b.ReportMetric(ms(percentile(streamRTT, 50)), "newstream-ping-ms-p50")
	b.ReportMetric(float64(percentile(wireRTT, 50))/float64(percentile(pingRTT, 50)), "x-ping-wire")
	b.ReportMetric(float64(percentile(wireRTT, 50))/float64(percentile(streamRTT, 50)), "x-newstream-wire")
	b.ReportMetric(float64(percentile(endRTT, 50))/float64(percentile(pingRTT, 50)), "x-ping-end")
	fmt.Printf("invite to auto-accepted response (invitee in another process), %d rounds: end to end p50 %.3f ms p90 %.3f ms p99 %.3f ms; on the wire p50 %.3f ms p90 %.3f ms; libp2p ping on the same connection p50 %.3f ms p90 %.3f ms p99 %.3f ms; ping on a new stream p50 %.3f ms\n",
		rounds, ms(percentile(endRTT, 50)), ms(percentile(endRTT, 90)), ms(percentile(endRTT, 99)),
		ms(percentile(wireRTT, 50)), ms(percentile(wireRTT, 90)),
		ms(percentile(pingRTT, 50)), ms(percentile(pingRTT, 90)), ms(percentile(pingRTT, 99)), ms(percentile(streamRTT, 50)))
}

// BenchmarkInvite200 measures one host inviting 200 peers (its contacts,
// not yet connected) until all 200 answers are recorded.
func BenchmarkInvite200(b *testing.B) {
	const n = 200
	host := newNode(b, testConfig(b, "Host"))
	var peers []peer.ID
	for i := range n {
		w := newNode(b, testConfig(b, fmt.Sprintf("P%d", i)))
		pair(b, host, w)
		register(b, w, publish.RegisteredApp{Application: endpoint.Application{ID: "bench"}, AutoAccept: true})
		peers = append(peers, w.Identity().ID())
	}
	ev := host.Events()
	defer ev.Close()
	var took []time.Duration
	for r := range max(b.N, 3) {
		t0 := time.Now()
		recs, err := host.Invitations().Send(peers, invitations.Request{AppID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		for {
			t := invitations.Count(host.Invitations().List(invitations.Filter{Batch: recs[0].Batch}))
			if t.Done() {
				if t.Accepted != n {
					b.Fatalf("round %d: %+v", r, t)
				}
				break
			}
			waitEvent(b, ev, invitations.EvtChanged, recs[0].Batch)
		}
		took = append(took, time.Since(t0))
	}
	b.ReportMetric(ms(took[0]), "first-ms")
	b.ReportMetric(ms(percentile(took, 50)), "ms-p50")
	fmt.Printf("invite %d peers until all answered: first round (dialling all) %.1f ms, rounds %v\n", n, ms(took[0]), took)
}

// BenchmarkSessionFanout measures a session message until each of 50
// members has it (its event stream delivers it), p99 over rounds, against
// raw gossipsub in the same run: a publisher and 50 subscribers connected
// to it (the same star the session's members form around their host), with
// flood publishing as the session uses. Sent by the host and by a member;
// every member must receive every message. A raw message that does not
// arrive within 3 s counts as lost, with a latency of 3 s.
func BenchmarkSessionFanout(b *testing.B) {
	const members = 50
	rounds := max(b.N, 40)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Raw gossipsub star.
	topic, leaves, subs := rawStar(b, ctx, members)
	hubSub, err := topic.Subscribe()
	if err != nil {
		b.Fatal(err)
	}
	warmUp()
	payload := make([]byte, 200)
	rawRound := func(pub *pubsub.Topic, receivers []*pubsub.Subscription) ([]time.Duration, int) {
		return rawRound(ctx, pub, receivers, payload, 3*time.Second)
	}
	var rawHub, rawLeaf []time.Duration
	rawLost := 0
	for range rounds {
		lat, lost := rawRound(topic, subs)
		rawHub, rawLost = append(rawHub, lat...), rawLost+lost
	}
	leafReceivers := append([]*pubsub.Subscription{hubSub}, subs[1:]...)
	for range rounds {
		lat, lost := rawRound(leaves[0], leafReceivers)
		rawLeaf, rawLost = append(rawLeaf, lat...), rawLost+lost
	}

	// The session.
	host := newNode(b, testConfig(b, "Host"))
	var mem []*node.Node
	var ids []peer.ID
	for i := range members {
		m := newNode(b, testConfig(b, fmt.Sprintf("M%d", i)))
		pair(b, host, m)
		register(b, m, publish.RegisteredApp{Application: endpoint.Application{ID: "bench"}, AutoAccept: true})
		mem, ids = append(mem, m), append(ids, m.Identity().ID())
	}
	v, err := host.Sessions().Create("bench")
	if err != nil {
		b.Fatal(err)
	}
	sid := v.ID
	if _, _, err := host.Sessions().Invite(sid, ids, "", 0); err != nil {
		b.Fatal(err)
	}
	waitSession(b, host, sid, "all joined", func(v sessions.View) bool { return len(v.Members) == members+1 })
	if _, err := host.Sessions().Start(sid); err != nil {
		b.Fatal(err)
	}
	for _, m := range mem {
		waitSession(b, m, sid, "running", func(v sessions.View) bool { return v.Joined && v.State == session.Running })
	}
	evs := make(map[*node.Node]*events.Sub)
	for _, n := range append([]*node.Node{host}, mem...) {
		ev := n.Events()
		b.Cleanup(func() { ev.Close() })
		evs[n] = ev
	}
	warmUp()
	ourRound := func(sender *node.Node, receivers []*node.Node, text string) ([]time.Duration, int) {
		var wg sync.WaitGroup
		lat := make([]time.Duration, len(receivers))
		lost := 0
		var mu sync.Mutex
		want := base64.StdEncoding.EncodeToString([]byte(text))
		t0 := time.Now()
		for i, r := range receivers {
			wg.Go(func() {
				wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				for {
					ev, err := evs[r].Next(wctx)
					if err != nil {
						mu.Lock()
						lost++
						mu.Unlock()
						return
					}
					if ev.Type == sessions.EvtMessage && ev.Data.(sessions.Message).Session == sid &&
						base64.StdEncoding.EncodeToString(ev.Data.(sessions.Message).Data) == want {
						lat[i] = time.Since(t0)
						return
					}
				}
			})
		}
		if _, err := sender.Sessions().Send(ctx, sid, []byte(text)); err != nil {
			b.Fatal(err)
		}
		wg.Wait()
		return lat, lost
	}
	var ourHub, ourLeaf []time.Duration
	ourLost := 0
	for r := range rounds {
		lat, lost := ourRound(host, mem, fmt.Sprintf("host %d", r))
		ourHub, ourLost = append(ourHub, lat...), ourLost+lost
	}
	leafRecv := append([]*node.Node{host}, mem[1:]...)
	for r := range rounds {
		lat, lost := ourRound(mem[0], leafRecv, fmt.Sprintf("member %d", r))
		ourLeaf, ourLost = append(ourLeaf, lat...), ourLost+lost
	}
	b.ReportMetric(ms(percentile(ourHub, 99)), "host-ms-p99")
	b.ReportMetric(ms(percentile(rawHub, 99)), "raw-hub-ms-p99")
	b.ReportMetric(float64(percentile(ourHub, 99))/float64(percentile(rawHub, 99)), "x-raw-host-p99")
	b.ReportMetric(ms(percentile(ourLeaf, 99)), "member-ms-p99")
	b.ReportMetric(ms(percentile(rawLeaf, 99)), "raw-leaf-ms-p99")
	b.ReportMetric(float64(percentile(ourLeaf, 99))/float64(percentile(rawLeaf, 99)), "x-raw-member-p99")
	b.ReportMetric(float64(ourLost), "lost")
	b.ReportMetric(float64(rawLost), "raw-lost")
	fmt.Printf("session message to %d members, %d rounds each: from the host p50 %.2f ms p99 %.2f ms (raw gossipsub p50 %.2f p99 %.2f); from a member p50 %.2f ms p99 %.2f ms (raw p50 %.2f p99 %.2f); lost %d (raw %d)\n",
		members, rounds, ms(percentile(ourHub, 50)), ms(percentile(ourHub, 99)), ms(percentile(rawHub, 50)), ms(percentile(rawHub, 99)),
		ms(percentile(ourLeaf, 50)), ms(percentile(ourLeaf, 99)), ms(percentile(rawLeaf, 50)), ms(percentile(rawLeaf, 99)), ourLost, rawLost)
}

// BenchmarkRelayedInviteRTT measures an invitation's round trip over a
// relayed (circuit v2) connection against raw round trips on the
// same connection: libp2p ping on one stream, and a ping on a new stream
// each time (what any request/response protocol pays).
func BenchmarkRelayedInviteRTT(b *testing.B) {
	rcfg := node.DefaultRelayConfig(filepath.Join(b.TempDir(), "relay"))
	rcfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	rcfg.Profile = contacts.Profile{DisplayName: "Relay"}
	rcfg.Scope = "internet"
	// Unlimited circuits: the default 128 KiB would end the circuit
	// midway through the rounds (a limit is policy, not latency).
	rcfg.RelayUnlimited = true
	relay := newNode(b, rcfg)
	relayAddr := relay.Host().Addrs()[0].String() + "/p2p/" + relay.Identity().ID().String()
	acfg := testConfig(b, "Inviter")
	acfg.StaticRelays = []string{relayAddr}
	a := newNode(b, acfg)
	invitee := startRemoteInvitee(b, a, relayAddr)
	// Reach the invitee through the relay only.
	a.Host().Network().ClosePeer(invitee)
	circuit := ma.StringCast(relayAddr + "/p2p-circuit")
	ctx := network.WithAllowLimitedConn(context.Background(), "bench")
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: invitee, Addrs: []ma.Multiaddr{circuit}}); err != nil {
		b.Fatal(err)
	}
	if ci, ok := a.ConnTo(invitee); !ok || !ci.Relayed {
		b.Fatalf("not relayed: %+v", ci)
	}
	mine, _ := a.MyCard()
	rounds := max(b.N, 200)
	inviteOnce := func() time.Duration {
		now := time.Now()
		inv := invite.Invitation{ID: invite.NewID(), AppID: "bench", Sent: now, Expires: now.Add(time.Minute), InviterCard: mine.Marshal()}
		t0 := time.Now()
		ack, err := invite.Invite(ctx, a.Host(), invitee, inv)
		if err != nil || ack.Response == nil || ack.Response.Action != invite.Accepted {
			b.Fatalf("relayed invite: %+v, %v", ack, err)
		}
		return time.Since(t0)
	}
	pingRTT, streamRTT := pingRTTs(b, ctx, a.Host(), invitee, rounds)
	var wireRTT []time.Duration
	inviteOnce() // warm up
	for range rounds {
		wireRTT = append(wireRTT, inviteOnce())
	}
	if ci, _ := a.ConnTo(invitee); !ci.Relayed {
		b.Fatal("the connection went direct during the measurement")
	}
	b.ReportMetric(ms(percentile(wireRTT, 50)), "invite-ms-p50")
	b.ReportMetric(ms(percentile(pingRTT, 50)), "ping-ms-p50")
	b.ReportMetric(ms(percentile(streamRTT, 50)), "newstream-ms-p50")
	b.ReportMetric(float64(percentile(wireRTT, 50))/float64(percentile(streamRTT, 50)), "x-newstream")
	b.ReportMetric(float64(percentile(wireRTT, 50))/float64(percentile(pingRTT, 50)), "x-ping")
	fmt.Printf("relayed, %d rounds: invitation round trip p50 %.3f ms p90 %.3f ms; raw stream (ping on a new stream) p50 %.3f ms p90 %.3f ms; ping on one stream p50 %.3f ms\n",
		rounds, ms(percentile(wireRTT, 50)), ms(percentile(wireRTT, 90)), ms(percentile(streamRTT, 50)), ms(percentile(streamRTT, 90)), ms(percentile(pingRTT, 50)))
}
