package sessions

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/protocols/invite"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeInvitations stands in for the invitation service: it keeps records
// in memory and publishes their changes.
type fakeInvitations struct {
	invitations.Feed
	mu   sync.Mutex
	recs map[string]invitations.Record
}

func (f *fakeInvitations) put(r invitations.Record) invitations.Record {
	f.mu.Lock()
	if f.recs == nil {
		f.recs = map[string]invitations.Record{}
	}
	f.recs[r.ID] = r
	f.mu.Unlock()
	f.Publish(r)
	return r
}

func (f *fakeInvitations) SendTo(targets []invitations.Target, req invitations.Request) ([]invitations.Record, error) {
	var out []invitations.Record
	for _, t := range targets {
		out = append(out, f.put(invitations.Record{Invitation: invite.Invitation{ID: invite.NewID(), AppID: req.AppID, SessionID: req.SessionID},
			Direction: invitations.Sent, Peer: t.Peer, Person: t.Person, State: invitations.Pending}))
	}
	return out, nil
}

func (f *fakeInvitations) set(id string, st invitations.State) (invitations.Record, error) {
	f.mu.Lock()
	r, ok := f.recs[id]
	f.mu.Unlock()
	if !ok {
		return invitations.Record{}, invitations.ErrNotFound
	}
	r.State = st
	return f.put(r), nil
}

func (f *fakeInvitations) Cancel(id string) (invitations.Record, error) {
	return f.set(id, invitations.Cancelled)
}
func (f *fakeInvitations) Accept(id string) (invitations.Record, error) {
	return f.set(id, invitations.Accepted)
}

func (f *fakeInvitations) List(flt invitations.Filter) []invitations.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []invitations.Record
	for _, r := range f.recs {
		if (flt.Direction == "" || r.Direction == flt.Direction) && (flt.SessionID == "" || r.SessionID == flt.SessionID) {
			out = append(out, r)
		}
	}
	return out
}

// peerNode is one node of a test: a mocknet host with an Ed25519 key (a
// message's signature is checked against the key its sender's ID holds),
// gossipsub, a database, and the session service over them.
type peerNode struct {
	t     *testing.T
	h     host.Host
	key   crypto.PrivKey
	ps    *pubsub.PubSub
	dir   string
	db    *state.DB
	hub   *events.Hub
	inv   *fakeInvitations
	keep  Retention
	s     *Service
	close func()
	// connect, when set, is the service's Connect.
	connect func(context.Context, peer.ID) error
}

// testNetwork makes n connected nodes; their services are not started.
func testNetwork(t *testing.T, n int) []*peerNode {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var out []*peerNode
	for i := range n {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(k, ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4242", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithFloodPublish(true))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &peerNode{t: t, h: h, key: k, ps: ps, dir: t.TempDir(), hub: events.NewHub(), inv: &fakeInvitations{}})
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	return out
}

// start opens the node's database and starts its service.
func (n *peerNode) start() {
	n.t.Helper()
	db, err := state.Open(filepath.Join(n.dir, state.InvitationsFile), state.Options{Relaxed: true})
	if err != nil {
		n.t.Fatal(err)
	}
	n.db = db
	connect := n.connect
	if connect == nil {
		connect = func(context.Context, peer.ID) error { return nil }
	}
	s, err := New(Config{Host: n.h, PubSub: n.ps, State: db, Dir: filepath.Join(n.dir, "sessions"), Hub: n.hub, Invitations: n.inv, Sign: n.key.Sign,
		Connect: connect, App: func(string) (bool, bool) { return true, false },
		Heartbeat: 200 * time.Millisecond, Retention: n.keep})
	if err != nil {
		db.Close()
		n.t.Fatal(err)
	}
	n.s = s
	n.close = sync.OnceFunc(func() { s.Close(); db.Close() })
	n.t.Cleanup(n.close)
}

// restart stops the node's service and database and starts them again.
func (n *peerNode) restart() {
	n.t.Helper()
	n.close()
	n.start()
}

// eventually polls cond until it holds, for at most 15 s.
func eventually(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
		// Polled, not slept on: every 10 ms until the deadline.
		<-time.After(10 * time.Millisecond)
	}
}

func (n *peerNode) view(sid string) View {
	v, _ := n.s.Get(sid)
	return v
}

// messages waits until the node lists want messages of session sid.
func (n *peerNode) messages(sid string, want int) []Message {
	n.t.Helper()
	var ms []Message
	eventually(n.t, func() bool { ms, _ = n.s.Messages(sid, 0); return len(ms) >= want },
		func() string {
			var got []string
			for _, m := range ms {
				got = append(got, fmt.Sprintf("%s/%d", m.Sender.String()[len(m.Sender.String())-4:], m.Seq))
			}
			return fmt.Sprintf("%s lists %d of %d messages: %v", n.h.ID(), len(ms), want, got)
		})
	return ms
}

// hostSession makes host host a running session with members, who accept
// their invitations (their joins stand for the acceptance at the host).
func hostSession(t *testing.T, host *peerNode, members ...*peerNode) string {
	t.Helper()
	v, err := host.s.Create("chat")
	if err != nil {
		t.Fatal(err)
	}
	sid := v.ID
	var ids []peer.ID
	for _, m := range members {
		ids = append(ids, m.h.ID())
	}
	_, recs, err := host.s.Invite(sid, ids, "", 0)
	if err != nil || len(recs) != len(members) {
		t.Fatalf("invite: %v, %v", recs, err)
	}
	for i, m := range members {
		r := recs[i]
		r.Direction, r.Peer, r.State = invitations.Received, host.h.ID(), invitations.Accepted
		m.inv.put(r)
	}
	eventually(t, func() bool { return len(host.view(sid).Members) == len(members)+1 },
		func() string { return fmt.Sprintf("the host's session: %+v", host.view(sid)) })
	if _, err := host.s.Start(sid); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		eventually(t, func() bool { v := m.view(sid); return v.Joined && v.State == session.Running },
			func() string { return fmt.Sprintf("member %s: %+v", m.h.ID(), m.view(sid)) })
	}
	return sid
}

// say has each node send round messages.
func say(t *testing.T, sid string, from []*peerNode, rounds ...int) {
	t.Helper()
	for _, r := range rounds {
		for _, n := range from {
			if _, err := n.s.Send(context.Background(), sid, fmt.Appendf(nil, "%s %d", n.h.ID(), r)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// inOrder fails t unless ms hold each sender's messages once, in order,
// from 1.
func inOrder(t *testing.T, ms []Message) map[peer.ID]int {
	t.Helper()
	next := map[peer.ID]uint64{}
	for i, m := range ms {
		if m.Seq != next[m.Sender]+1 || m.Index != uint64(i+1) || string(m.Data) != fmt.Sprintf("%s %d", m.Sender, m.Seq) {
			t.Fatalf("message %d: %+v (after %d of its sender)", i, m, next[m.Sender])
		}
		next[m.Sender] = m.Seq
	}
	out := map[peer.ID]int{}
	for p, n := range next {
		out[p] = int(n)
	}
	return out
}

// TestHistorySurvivesRestarts: a host and two members talk; a member and
// then the host restart; each lists what it listed before, then the new
// messages after it.
func TestHistorySurvivesRestarts(t *testing.T) {
	ns := testNetwork(t, 3)
	for _, n := range ns {
		n.start()
	}
	host, a, b := ns[0], ns[1], ns[2]
	sid := hostSession(t, host, a, b)
	say(t, sid, ns, 1, 2, 3)
	before := map[*peerNode][]Message{}
	for _, n := range ns {
		before[n] = n.messages(sid, 9)
		inOrder(t, before[n])
	}
	same := func(n *peerNode, what string) []Message {
		t.Helper()
		ms := n.messages(sid, len(before[n]))
		for i, m := range before[n] {
			if g := ms[i]; g.Index != m.Index || g.Sender != m.Sender || g.Seq != m.Seq || string(g.Data) != string(m.Data) || !g.Time.Equal(m.Time) {
				t.Fatalf("%s: message %d was %+v, is %+v", what, i, m, g)
			}
		}
		return ms
	}
	a.restart()
	same(a, "a member after its restart")
	eventually(t, func() bool {
		v := a.view(sid)
		return v.Joined && v.State == session.Running && v.Received == 9 && v.Sent == 3
	},
		func() string { return fmt.Sprintf("a after its restart: %+v", a.view(sid)) })
	host.restart()
	same(host, "the host after its restart")
	say(t, sid, ns, 4)
	for _, n := range ns {
		ms := same(n, "after new messages")
		ms = n.messages(sid, 12)
		if got := inOrder(t, ms); got[host.h.ID()] != 4 || got[a.h.ID()] != 4 || got[b.h.ID()] != 4 {
			t.Fatalf("%s lists %v", n.h.ID(), got)
		}
	}
}

// TestRetention: a session keeps its last Retention.Messages messages, and
// no more bytes than Retention.Bytes, on disk as in memory.
func TestRetention(t *testing.T) {
	ns := testNetwork(t, 1)
	n := ns[0]
	n.keep = Retention{Messages: 5}
	n.start()
	v, err := n.s.Create("chat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.s.Start(v.ID); err != nil {
		t.Fatal(err)
	}
	say(t, v.ID, ns, 1, 2, 3, 4, 5, 6, 7, 8)
	stored := func() int {
		raw, _ := os.ReadFile(n.s.logPath(v.ID))
		recs, _, _ := readRecords(raw)
		return len(recs)
	}
	check := func(what string, first, count int) {
		t.Helper()
		ms, _ := n.s.Messages(v.ID, 0)
		if len(ms) != count || ms[0].Index != uint64(first) || ms[len(ms)-1].Index != uint64(first+count-1) || stored() != count {
			t.Fatalf("%s: lists %d (from %d), stores %d; want %d from %d", what, len(ms), ms[0].Index, stored(), count, first)
		}
		if after, _ := n.s.Messages(v.ID, uint64(first+1)); len(after) != count-2 {
			t.Fatalf("%s: %d after index %d", what, len(after), first+1)
		}
	}
	// The log holds the dropped records until there are logSlack of them.
	ms, _ := n.s.Messages(v.ID, 0)
	if len(ms) != 5 || ms[0].Index != 4 || stored() != 8 {
		t.Fatalf("lists %d from %d, stores %d", len(ms), ms[0].Index, stored())
	}
	// A restart reads what is kept, and rewrites the log with it.
	n.restart()
	check("by count, restarted", 4, 5)
	if got := n.view(v.ID); got.Received != 8 || got.Sent != 8 {
		t.Fatalf("view after the restart: %+v", got)
	}
	// A smaller bound read at start trims what is stored.
	ms, _ = n.s.Messages(v.ID, 0)
	n.keep = Retention{Bytes: 3 * sizeOf(ms[0].sealedForTest(n))}
	n.restart()
	check("by bytes, restarted", 6, 3)
}

// sealedForTest is the stored form of m at n.
func (m Message) sealedForTest(n *peerNode) *psession.Data {
	x, _ := n.s.lookup(m.Session)
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.log[m.Sender][m.Seq]
}

// TestSendWaitsForKey: a Send that finds the key of the roster's epoch
// missing waits for it, and goes on when it comes.
func TestSendWaitsForKey(t *testing.T) {
	ns := testNetwork(t, 2)
	for _, n := range ns {
		n.start()
	}
	host, m := ns[0], ns[1]
	sid := hostSession(t, host, m)
	x, _ := m.s.lookup(sid)
	x.mu.Lock()
	key2 := psession.NewKey(2)
	r := x.p.Roster()
	r.Version, r.Epoch = r.Version+1, 2
	x.applyLocked(x.p.RosterSeen(r)) // a new epoch, its key not here
	x.mu.Unlock()
	sent := make(chan error, 1)
	go func() {
		_, err := m.s.Send(context.Background(), sid, []byte("after the key"))
		sent <- err
	}()
	// The join the Send asked for fails at the host (its roster is at
	// epoch 1); the key comes by hand.
	eventually(t, func() bool { x.mu.Lock(); defer x.mu.Unlock(); return x.joining },
		func() string { return "the Send did not ask for the key" })
	select {
	case err := <-sent:
		t.Fatalf("Send returned without the key: %v", err)
	default:
	}
	x.mu.Lock()
	x.addKeyLocked(key2)
	x.mu.Unlock()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not go on when the key came")
	}
	// A Send whose caller gives up does not wait for the key.
	x.mu.Lock()
	r.Version, r.Epoch = r.Version+1, 3
	x.applyLocked(x.p.RosterSeen(r))
	x.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.s.Send(ctx, sid, []byte("no key")); err != ErrNoKey {
		t.Fatalf("Send without a key = %v", err)
	}
}

// TestOutboxBounded: a session's outbound queue and its lanes hold at most
// their bounds; queuing never blocks.
func TestOutboxBounded(t *testing.T) {
	ns := testNetwork(t, 1)
	n := ns[0]
	n.start()
	v, err := n.s.Create("chat")
	if err != nil {
		t.Fatal(err)
	}
	x, _ := n.s.lookup(v.ID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x.mu.Lock()
	defer x.mu.Unlock()
	// An outbox nobody drains, and a peer that cannot be reached until
	// the end of the test.
	out := newOutbox(ctx, x, x.topic)
	x.out = out
	for range outboxCap + 10 {
		x.publishLocked(x.heartbeatLocked())
	}
	if len(out.q) != outboxCap {
		t.Fatalf("queue holds %d", len(out.q))
	}
	_, stranger := newKey(t)
	out.mu.Lock()
	out.lanes[stranger] = &lane{running: true} // as if its goroutine were busy
	out.mu.Unlock()
	for range laneCap + 10 {
		x.directLocked(stranger, direct{m: x.heartbeatLocked()})
	}
	out.mu.Lock()
	held := len(out.lanes[stranger].items)
	out.mu.Unlock()
	if held != laneCap {
		t.Fatalf("lane holds %d", held)
	}
}

func newKey(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

// TestHostRequestPrefix: a host request is named by its ID or a unique
// prefix; a prefix that more have is refused, not guessed.
func TestHostRequestPrefix(t *testing.T) {
	ns := testNetwork(t, 1)
	n := ns[0]
	n.start()
	_, from := newKey(t)
	for _, id := range []string{"abcd0000000000000000000000000001", "abcd0000000000000000000000000002", "ffff0000000000000000000000000003"} {
		n.s.requests[id] = &HostRequest{ID: id, From: from, App: "chat", State: "pending"}
	}
	if _, err := n.s.AnswerHostRequest("abcd", false); !errors.Is(err, ErrAmbiguousRequest) {
		t.Fatalf("an ambiguous prefix: %v", err)
	}
	if _, err := n.s.AnswerHostRequest("9999", false); !errors.Is(err, ErrNoRequest) {
		t.Fatalf("an unknown prefix: %v", err)
	}
	r, err := n.s.AnswerHostRequest("ffff", false)
	if err != nil || r.ID != "ffff0000000000000000000000000003" || r.State != "declined" {
		t.Fatalf("a unique prefix: %+v, %v", r, err)
	}
	if _, err := n.s.AnswerHostRequest("ffff0000000000000000000000000003", false); !errors.Is(err, ErrAnswered) {
		t.Fatalf("answering twice: %v", err)
	}
}

// FuzzStoredHistory: a node starts from whatever its log holds for a
// session (damaged, cut short, written by someone else). It starts, lists
// only what holds together (whole records that open with the session's
// key), in order of index, and leaves the log holding just that.
func FuzzStoredHistory(f *testing.F) {
	r := newRig(f)
	key := psession.NewKey(1)
	rec := `{"id":"` + fuzzSID + `","application_id":"chat","host":"` + r.other.ID().String() + `","hosting":false,
"roster":{"session":"` + fuzzSID + `","application_id":"chat","host":"` + r.other.ID().String() + `","state":"running","version":3,"epoch":1,"members":["` + r.other.ID().String() + `","` + r.me.ID().String() + `"]},
"keys":{"1":"` + encodeKey(key) + `"},"me":"member","joined":true,"invitation_id":"x"}`
	if err := r.db.Put(bucket, fuzzSID, json.RawMessage(rec)); err != nil {
		f.Fatal(err)
	}
	var good []byte
	for seq := range uint64(3) {
		d, _ := psession.Seal(fuzzSID, r.m2Key.Sign, r.m2, seq+1, key, []byte("hi"))
		good = appendRecord(good, logRecord{Index: seq + 1, Time: time.Now(), Data: d})
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(slices.Clone(good), good...))
	other := appendRecord(nil, logRecord{Index: 9, Data: psession.Data{Session: fuzzSID, Sender: r.m2, Seq: 2, Epoch: 7, Sealed: []byte("x")}})
	f.Add(append(other, good...))
	f.Add([]byte{0x05, 0, 0, 0, 0, '{', '}', 0xff})
	path := filepath.Join(r.dir, fuzzSID+logExt)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := New(r.config(r.db))
		if err != nil {
			t.Fatalf("the node does not start: %v", err)
		}
		ms, err := s.Messages(fuzzSID, 0)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSortedFunc(ms, func(a, b Message) int { return cmp.Compare(a.Index, b.Index) }) {
			t.Fatalf("listed out of order: %+v", ms)
		}
		for _, m := range ms {
			if m.Session != fuzzSID || m.Index == 0 || m.Sender != r.m2 || string(m.Data) != "hi" {
				t.Fatalf("listed %+v", m)
			}
		}
		left, _ := os.ReadFile(path)
		recs, n, err := readRecords(left)
		if err != nil || n != len(left) || len(recs) != len(ms) {
			t.Fatalf("lists %d, leaves %d records (%d of %d bytes, %v)", len(ms), len(recs), n, len(left), err)
		}
	})
}

// TestUnjoinedSessionSurvivesRestart: a session this node accepted but
// has not joined yet (its host is away) is stored so that it reads back,
// and after a restart the node still tries to join it.
func TestUnjoinedSessionSurvivesRestart(t *testing.T) {
	ns := testNetwork(t, 1)
	n := ns[0]
	n.start()
	_, away := newKey(t)
	sid := psession.NewTopicTag()
	n.inv.put(invitations.Record{Invitation: invite.Invitation{ID: invite.NewID(), AppID: "chat", SessionID: sid},
		Direction: invitations.Received, Peer: away, State: invitations.Accepted})
	eventually(t, func() bool { v, err := n.s.Get(sid); return err == nil && v.Me == session.Invited },
		func() string { return "the accepted session is not there" })
	n.inv = &fakeInvitations{} // the session must come back from its own record
	n.restart()
	v, err := n.s.Get(sid)
	if err != nil || v.Host != away || v.Me != session.Invited || v.Joined {
		t.Fatalf("after the restart: %+v, %v", v, err)
	}
	x, _ := n.s.lookup(sid)
	eventually(t, func() bool { x.mu.Lock(); defer x.mu.Unlock(); return x.joining },
		func() string { return "the node does not try to join" })
}

// TestDirectRetried: a message handed to a peer directly whose stream
// fails (here its dial) stays at the head of the peer's lane and is handed
// again, where it used to be dropped for the receiver's repair; it is
// delivered once, in order.
func TestDirectRetried(t *testing.T) {
	ns := testNetwork(t, 2)
	host, member := ns[0], ns[1]
	var fail, calls atomic.Int32
	host.connect = func(context.Context, peer.ID) error {
		calls.Add(1)
		if fail.Add(-1) >= 0 {
			return errors.New("no route to the peer")
		}
		return nil
	}
	host.start()
	member.start()
	sid := hostSession(t, host, member)
	x, _ := host.s.lookup(sid)
	fail.Store(2)
	calls.Store(0)
	// The host's own message, for the member directly only (not on the
	// topic), as for a member off the topic's mesh.
	x.mu.Lock()
	seq := x.mySeq + 1
	payload := fmt.Appendf(nil, "%s %d", host.h.ID(), seq)
	d, err := psession.Seal(x.id, host.key.Sign, x.me, seq, x.keys[x.roster.Epoch], payload)
	if err != nil {
		x.mu.Unlock()
		t.Fatal(err)
	}
	x.mySeq = seq
	x.keepLocked(&d)
	x.order.Start(x.me, seq)
	x.deliverLocked(x.order.Add(x.me, seq, &d), &d, payload)
	x.directLocked(member.h.ID(), direct{m: dataMessage(&d)})
	x.mu.Unlock()
	ms := member.messages(sid, 1)
	inOrder(t, ms)
	if len(ms) != 1 || ms[0].Sender != host.h.ID() {
		t.Fatalf("the member got %+v", ms)
	}
	eventually(t, func() bool { return calls.Load() >= 3 }, func() string {
		return fmt.Sprintf("the lane tried %d times (the first two fail)", calls.Load())
	})
}
