package invitations

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"

	"github.com/peercollab/peercollab/protocols/invite"
)

// eventually polls cond until it holds, failing t after 10 s.
func eventually(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSourceOf(t *testing.T) {
	for _, tc := range []struct {
		name, addr    string
		want, network string
	}{
		{"ipv4", "/ip4/192.0.2.7/tcp/4737", "192.0.2.7", "192.0.2.0/24"},
		{"quic", "/ip4/198.51.100.9/udp/4737/quic-v1", "198.51.100.9", "198.51.100.0/24"},
		{"ipv6", "/ip6/2001:db8:1:2::5/tcp/1", "2001:db8:1:2::5", "2001:db8:1::/48"},
		{"ipv4 in ipv6", "/ip6/::ffff:192.0.2.7/tcp/1", "192.0.2.7", "192.0.2.0/24"},
		{"relayed: the relay", "/ip4/203.0.113.1/tcp/4001/p2p/12D3KooWBRB8Ww4BjeDBgLkkqz8kqTnKx3RdSzr6ZCBRyawjBmJF/p2p-circuit", "203.0.113.1", "203.0.113.0/24"},
		{"no IP", "/dns4/example.com/tcp/1", "invalid IP", "invalid Prefix"},
	} {
		src := sourceOf(ma.StringCast(tc.addr))
		if src.addr.String() != tc.want || src.network.String() != tc.network {
			t.Errorf("%s: %v %v, want %s %s", tc.name, src.addr, src.network, tc.want, tc.network)
		}
	}
	if src := sourceOf(nil); src != (source{}) {
		t.Errorf("no address: %+v", src)
	}
}

// TestLimitersBounded: a table full of busy limiters refuses new keys and
// keeps limiting the old ones; a limiter whose bucket is full again makes
// room for a new key.
func TestLimitersBounded(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	tab := newLimiters[string](rate.Limit(1), 2, 2) // one a second, bursts of 2, two keys
	step := func(k string, at time.Duration, want bool) {
		t.Helper()
		if got := tab.allow(k, t0.Add(at)); got != want {
			t.Fatalf("%s at %v: allowed %v, want %v", k, at, got, want)
		}
	}
	step("a", 0, true)
	step("a", 0, true)
	step("a", 0, false) // a's burst is spent
	step("b", 0, true)
	step("c", 0, false) // a and b are busy: c is refused, not a forgotten
	step("a", 0, false) // a is still limited
	step("c", 500*time.Millisecond, false)
	// After a second b is full again (it took one token), a is not: b
	// makes room for c.
	step("c", 1001*time.Millisecond, true)
	if _, ok := tab.m["a"]; !ok || tab.len() != 2 {
		t.Fatalf("table holds %v", tab.m)
	}
	step("a", 1001*time.Millisecond, true) // refilled one token
	step("a", 1001*time.Millisecond, false)
	// A table of limiters that never refill keeps them.
	frozen := newLimiters[string](0, 1, 1)
	if !frozen.allow("x", t0) || frozen.allow("y", t0.Add(time.Hour)) || frozen.allow("x", t0.Add(time.Hour)) {
		t.Fatal("a limiter without refill was forgotten")
	}
}

// loose are limits whose rates never bind, for tests of the budgets.
func loose(l Limits) Limits {
	l.AddrRate, l.AddrBurst, l.NetworkRate, l.NetworkBurst = rate.Inf, 1, rate.Inf, 1
	return l
}

// TestBudgetsAndShares: strangers are bounded per peer ID, per address,
// per network and in all; a contact is taken when strangers fill theirs;
// an answer frees a place.
func TestBudgetsAndShares(t *testing.T) {
	b := newBench(t, loose(Limits{StrangerInvitations: 6, PerPeer: 2, PerAddr: 3, PerNetwork: 5}))
	a, bb, c, d, e, f, friend := newInviter(t), newInviter(t), newInviter(t), newInviter(t), newInviter(t), newInviter(t), newInviter(t)
	b.befriend(friend.id)
	const net1, net2, net3 = "/ip4/10.0.1.", "/ip4/10.0.2.", "/ip4/10.0.3."
	taken := func(who inviter, addr string, want invite.Reason) invite.Invitation {
		t.Helper()
		inv := invitation(who, []byte("x"), time.Hour)
		if got := reason(t, b.invite(who, addr+"/tcp/1", inv)); got != want {
			t.Fatalf("invitation from %s: %q, want %q", addr, got, want)
		}
		return inv
	}
	first := taken(a, net1+"1", invite.NoReason)
	taken(a, net1+"1", invite.NoReason)
	taken(a, net1+"1", invite.InboxFull) // a's share
	taken(bb, net1+"1", invite.NoReason)
	taken(bb, net1+"1", invite.InboxFull) // 10.0.1.1's share
	taken(c, net1+"2", invite.NoReason)
	taken(c, net1+"2", invite.NoReason)
	taken(d, net1+"3", invite.InboxFull) // 10.0.1.0/24's share
	taken(e, net2+"1", invite.NoReason)
	taken(f, net3+"1", invite.InboxFull) // all six places
	taken(friend, net1+"1", invite.NoReason)
	if n := len(b.s.List(Filter{Direction: Received, Open: true})); n != 7 {
		t.Fatalf("%d open invitations, want 7", n)
	}
	if _, err := b.s.Decline(first.ID); err != nil {
		t.Fatal(err)
	}
	taken(f, net3+"1", invite.NoReason)
	// The same, read back from disk.
	b.restart()
	taken(f, net3+"1", invite.InboxFull)
	taken(friend, net3+"1", invite.NoReason)
}

// TestBytesBudget: the strangers' budget bounds bytes too.
func TestBytesBudget(t *testing.T) {
	b := newBench(t, loose(Limits{StrangerBytes: 40 << 10}))
	for i, want := range []invite.Reason{invite.NoReason, invite.NoReason, invite.InboxFull} {
		who := newInviter(t)
		if got := reason(t, b.invite(who, "/ip4/10.0.0.1/tcp/1", invitation(who, make([]byte, invite.MaxData), time.Hour))); got != want {
			t.Fatalf("invitation %d: %q, want %q", i, got, want)
		}
	}
	if got := b.s.in.strangers.bytes; got > 40<<10 {
		t.Fatalf("strangers hold %d bytes", got)
	}
}

// TestRateLimitBySource: fresh peer IDs from one address are rate
// limited; another address of the network, and a contact at the same
// address, are not.
func TestRateLimitBySource(t *testing.T) {
	b := newBench(t, Limits{AddrRate: 1e-6, AddrBurst: 3, NetworkRate: 1e-6, NetworkBurst: 5})
	try := func(who inviter, addr string) invite.Reason {
		return reason(t, b.invite(who, addr, invitation(who, nil, time.Hour)))
	}
	for i := range 3 {
		if got := try(newInviter(t), "/ip4/10.0.0.1/tcp/1"); got != invite.NoReason {
			t.Fatalf("stranger %d: %q", i, got)
		}
	}
	if got := try(newInviter(t), "/ip4/10.0.0.1/tcp/2"); got != invite.RateLimited {
		t.Fatalf("fourth stranger from one address: %q", got)
	}
	friend := newInviter(t)
	b.befriend(friend.id)
	if got := try(friend, "/ip4/10.0.0.1/tcp/3"); got != invite.NoReason {
		t.Fatalf("contact: %q", got)
	}
	for i, want := range []invite.Reason{invite.NoReason, invite.NoReason, invite.RateLimited} {
		if got := try(newInviter(t), "/ip4/10.0.0.2/tcp/1"); got != want {
			t.Fatalf("stranger %d from a neighbour: %q, want %q (the network's burst is 5)", i, got, want)
		}
	}
}

// TestLimiterTableFull: when the strangers' limiters are all busy, a new
// stranger is refused as rate limited; a contact is not.
func TestLimiterTableFull(t *testing.T) {
	b := newBench(t, Limits{Limiters: 2})
	for i, want := range []invite.Reason{invite.NoReason, invite.NoReason, invite.RateLimited} {
		who := newInviter(t)
		if got := reason(t, b.invite(who, "/ip4/10.0.0.1/tcp/1", invitation(who, nil, time.Hour))); got != want {
			t.Fatalf("stranger %d: %q, want %q", i, got, want)
		}
	}
	friend := newInviter(t)
	b.befriend(friend.id)
	if got := reason(t, b.invite(friend, "/ip4/10.0.0.1/tcp/1", invitation(friend, nil, time.Hour))); got != invite.NoReason {
		t.Fatalf("contact: %q", got)
	}
}

// TestStrangerExpiry: a stranger's invitation is kept at most
// StrangerExpiry, then frees its place and its data; a contact's keeps the
// expiry it asked for. Answered strangers' invitations stay listed up to
// StrangerHistory.
func TestStrangerExpiry(t *testing.T) {
	b := newBench(t, loose(Limits{StrangerExpiry: 100 * time.Millisecond, StrangerInvitations: 2, StrangerHistory: 3}))
	friend := newInviter(t)
	b.befriend(friend.id)
	fromFriend := invitation(friend, []byte("friend's"), time.Hour)
	if got := reason(t, b.invite(friend, "/ip4/10.0.0.1/tcp/1", fromFriend)); got != invite.NoReason {
		t.Fatal(got)
	}
	var ids []string
	for i := range 5 {
		who := newInviter(t)
		inv := invitation(who, []byte("stranger's"), time.Hour)
		start := time.Now()
		if got := reason(t, b.invite(who, "/ip4/10.0.0.1/tcp/1", inv)); got != invite.NoReason {
			t.Fatalf("stranger %d: %q", i, got)
		}
		r, err := b.s.Get(inv.ID)
		if err != nil || !bytes.Equal(r.Data, inv.Data) || len(r.Card) == 0 {
			t.Fatalf("stranger %d: %+v, %v", i, r, err)
		}
		if r.Expires.After(start.Add(time.Second)) {
			t.Fatalf("a stranger's invitation expires at %v, asked for an hour", r.Expires.Sub(start))
		}
		eventually(t, func() bool { r, _ = b.s.Get(inv.ID); return r.State == Expired }, "it expires")
		if r.Data != nil || r.Card != nil {
			t.Fatal("an expired invitation kept its data")
		}
		ids = append(ids, inv.ID)
	}
	if r, _ := b.s.Get(fromFriend.ID); r.State != Pending || !r.Expires.Equal(fromFriend.Expires) {
		t.Fatalf("the contact's invitation is %s, expiring at %v", r.State, r.Expires)
	}
	if _, err := b.s.Get(ids[0]); err == nil {
		t.Fatal("the oldest stranger's answered invitation is still listed")
	}
	if n := len(b.s.List(Filter{Direction: Received})); n != 4 {
		t.Fatalf("%d received invitations listed, want the contact's and 3 of strangers", n)
	}
	// Nothing of the dropped ones is left on disk.
	b.restart()
	var stored int
	b.cfg.State.ForEach(payloadBucket, func(string, []byte) error { stored++; return nil })
	if stored != 1 {
		t.Fatalf("%d payloads stored, want only the contact's", stored)
	}
}

// TestIndexWithoutPayload: List and events carry no data; the index on
// disk neither; Get reads it.
func TestIndexWithoutPayload(t *testing.T) {
	b := newBench(t, Limits{})
	sub := b.cfg.Hub.Subscribe(16)
	defer sub.Close()
	who := newInviter(t)
	data := []byte(strings.Repeat("d", 1000))
	inv := invitation(who, data, time.Hour)
	if got := reason(t, b.invite(who, "/ip4/10.0.0.1/tcp/1", inv)); got != invite.NoReason {
		t.Fatal(got)
	}
	ls := b.s.List(Filter{})
	if len(ls) != 1 || ls[0].Data != nil || ls[0].Card != nil || ls[0].Source != "/ip4/10.0.0.1/tcp/1" {
		t.Fatalf("listed %+v", ls)
	}
	b.s.mu.Lock()
	e := b.s.records[ls[0].key()]
	if e.Data != nil || e.Card != nil || e.InviterCard != nil {
		t.Fatal("the index in memory holds data")
	}
	b.s.mu.Unlock()
	b.cfg.State.ForEach(bucket, func(_ string, raw []byte) error {
		if bytes.Contains(raw, []byte(`"data"`)) || bytes.Contains(raw, []byte(`"card"`)) {
			t.Errorf("the index on disk holds data: %s", raw)
		}
		return nil
	})
	r, err := b.s.Get(inv.ID[:8])
	if err != nil || !bytes.Equal(r.Data, data) || !bytes.Equal(r.Card, who.card.Marshal()) {
		t.Fatalf("Get: %+v, %v", r, err)
	}
	ev, err := sub.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := ev.Data.(Record); !ok || v.Data != nil {
		t.Fatalf("event %+v", ev.Data)
	}
}

// BenchmarkIntake measures what one stranger's invitation costs the inbox
// (the handler only: no stream, no card parsing) when it is taken, and when
// a full budget or a rate limit refuses it.
func BenchmarkIntake(b *testing.B) {
	strangers := make([]inviter, 256)
	for i := range strangers {
		strangers[i] = newInviter(b)
	}
	data := make([]byte, invite.MaxData)
	for _, bc := range []struct {
		name string
		lim  Limits
		want invite.Reason
	}{
		{"taken", loose(Limits{StrangerInvitations: 1 << 30, StrangerBytes: 1 << 50, PerPeer: 1 << 30, PerAddr: 1 << 30, PerNetwork: 1 << 30}), invite.NoReason},
		{"inbox full", loose(Limits{StrangerInvitations: 1}), invite.InboxFull},
		{"rate limited", Limits{AddrRate: 1e-9, AddrBurst: 1}, invite.RateLimited},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bn := newBench(b, bc.lim)
			bn.s.in.strangerPeers = newLimiters[peer.ID](rate.Inf, 1, 1<<20)
			first := strangers[0]
			bn.invite(first, "/ip4/10.0.0.1/tcp/1", invitation(first, data, time.Hour))
			invs := make([]invite.Invitation, b.N)
			for i := range invs {
				invs[i] = invitation(strangers[i%len(strangers)], data, time.Hour)
			}
			b.ResetTimer()
			for i := range b.N {
				who := strangers[i%len(strangers)]
				if got := reason(b, handler{bn.s}.Invited(who.id, ma.StringCast("/ip4/10.0.0.1/tcp/1"), invs[i], who.card)); got != bc.want {
					b.Fatalf("%q, want %q", got, bc.want)
				}
			}
		})
	}
}
