package near

import (
	"net/netip"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/announce"
)

// table is the list of people near, kept from their announcements: bounded,
// and fair among the addresses announcements come from, so that whoever
// makes many keys cannot push out or lock out the others.
//
//   - A record counts only when its sequence number is greater than the last
//     one held for its peer, also for a peer that left or vanished (a
//     tombstone keeps its number for a while), so replays do nothing.
//   - One source address holds at most perAddr people; further keys from it
//     are refused. Loopback and this machine's own addresses are exempt
//     (several nodes on one machine).
//   - The table holds at most max people. When it is full, a newcomer from
//     an address that holds fewer people than the address holding the most
//     takes the place of that address's newest entry; otherwise it is
//     refused.
//
// It is pure logic; Service holds it under its mutex.
type table struct {
	max, perAddr int
	exempt       func(netip.Addr) bool

	people map[peer.ID]*entry
	perSrc map[netip.Addr]int
	// envs maps the envelopes held to their peers, so that a repeat of an
	// envelope is known without checking its signature again.
	envs map[string]peer.ID
	// gone keeps the last sequence number of people removed, oldest first
	// in goneOrder, at most maxGone of them.
	gone      map[peer.ID]uint64
	goneOrder []peer.ID
}

type entry struct {
	person  Person
	seq     uint64
	src     netip.Addr
	refresh time.Duration
	env     string
	added   uint64 // insertion order, to find an address's newest entry
}

// maxGone bounds the tombstones.
const maxGone = 4096

func newTable(maxPeople, perAddr int, exempt func(netip.Addr) bool) *table {
	return &table{max: maxPeople, perAddr: perAddr, exempt: exempt, people: map[peer.ID]*entry{},
		perSrc: map[netip.Addr]int{}, envs: map[string]peer.ID{}, gone: map[peer.ID]uint64{}}
}

// change is one change of the list, to be published.
type change struct {
	typ    contacts.ChangeType
	person Person
}

// outcome says what became of an announcement.
type outcome int

const (
	stale     outcome = iota // not newer than what is held: a replay or a repeat
	taken                    // added, updated or removed
	addrFull                 // its address holds perAddr people already
	tableFull                // the table is full and its address holds as many as any
)

// holds reports whether env is an envelope the table holds already.
func (t *table) holds(env []byte) bool {
	_, ok := t.envs[string(env)]
	return ok
}

// apply takes a verified announcement that arrived from src. It returns
// what happened and the changes to publish.
func (t *table) apply(r announce.Record, env []byte, src netip.Addr, now time.Time, seq uint64) (outcome, []change) {
	src = src.Unmap()
	e, known := t.people[r.Peer]
	if known && r.Seq <= e.seq {
		return stale, nil
	}
	if last, ok := t.gone[r.Peer]; !known && ok && r.Seq <= last {
		return stale, nil
	}
	if r.Bye {
		t.setGone(r.Peer, r.Seq)
		if !known {
			return taken, nil
		}
		t.remove(e)
		return taken, []change{{contacts.Deleted, e.person}}
	}
	p := Person{Peer: r.Peer, DisplayName: r.DisplayName, Email: r.Email, EndpointName: r.EndpointName,
		Presence: r.Presence, Fingerprint: r.Fingerprint, Addrs: usableAddrs(r.Addrs, src), Since: now, LastSeen: now}
	if known {
		old := e.person
		p.Since = old.Since
		delete(t.envs, e.env)
		if e.src != src {
			t.uncount(e.src)
			t.count(src)
		}
		e.person, e.seq, e.src, e.refresh, e.env = p, r.Seq, src, r.Refresh, string(env)
		t.envs[e.env] = r.Peer
		if samePerson(old, p) {
			return taken, nil
		}
		return taken, []change{{contacts.Updated, p}}
	}
	var out []change
	if !t.exempt(src) && t.perSrc[src] >= t.perAddr {
		return addrFull, nil
	}
	if len(t.people) >= t.max {
		victim := t.newestOfHeaviest()
		if victim == nil || t.perSrc[victim.src] <= t.perSrc[src]+1 {
			return tableFull, nil
		}
		t.remove(victim)
		out = append(out, change{contacts.Deleted, victim.person})
	}
	e = &entry{person: p, seq: r.Seq, src: src, refresh: r.Refresh, env: string(env), added: seq}
	t.people[r.Peer] = e
	t.envs[e.env] = r.Peer
	t.count(src)
	return taken, append(out, change{contacts.Added, p})
}

// expire removes the people not heard of for LostAfter of the refresh
// interval they stated.
func (t *table) expire(now time.Time) []change {
	var out []change
	for _, e := range t.people {
		if now.Sub(e.person.LastSeen) > announce.LostAfter(e.refresh) {
			t.setGone(e.person.Peer, e.seq)
			t.remove(e)
			out = append(out, change{contacts.Deleted, e.person})
		}
	}
	return out
}

// clear empties the table, tombstones included.
func (t *table) clear() []change {
	var out []change
	for _, e := range t.people {
		out = append(out, change{contacts.Deleted, e.person})
	}
	clear(t.people)
	clear(t.perSrc)
	clear(t.envs)
	clear(t.gone)
	t.goneOrder = nil
	return out
}

func (t *table) remove(e *entry) {
	delete(t.people, e.person.Peer)
	delete(t.envs, e.env)
	t.uncount(e.src)
}

func (t *table) count(src netip.Addr) { t.perSrc[src]++ }

func (t *table) uncount(src netip.Addr) {
	if t.perSrc[src]--; t.perSrc[src] <= 0 {
		delete(t.perSrc, src)
	}
}

// newestOfHeaviest is the newest entry of the (non-exempt) address that
// holds the most people.
func (t *table) newestOfHeaviest() *entry {
	var heavy netip.Addr
	n := 0
	for src, c := range t.perSrc {
		if c > n && !t.exempt(src) {
			heavy, n = src, c
		}
	}
	var newest *entry
	for _, e := range t.people {
		if e.src == heavy && (newest == nil || e.added > newest.added) {
			newest = e
		}
	}
	return newest
}

func (t *table) setGone(p peer.ID, seq uint64) {
	if _, ok := t.gone[p]; !ok {
		if len(t.goneOrder) >= maxGone {
			delete(t.gone, t.goneOrder[0])
			t.goneOrder = slices.Delete(t.goneOrder, 0, 1)
		}
		t.goneOrder = append(t.goneOrder, p)
	}
	t.gone[p] = seq
}

// usableAddrs are the addresses worth dialling of a node heard from src:
// loopback addresses only when src is loopback itself.
func usableAddrs(addrs []ma.Multiaddr, src netip.Addr) []ma.Multiaddr {
	if src.IsLoopback() {
		return addrs
	}
	var out []ma.Multiaddr
	for _, a := range addrs {
		if !manet.IsIPLoopback(a) {
			out = append(out, a)
		}
	}
	return out
}

func samePerson(a, b Person) bool {
	return a.DisplayName == b.DisplayName && a.Email == b.Email && a.EndpointName == b.EndpointName &&
		a.Presence == b.Presence && a.Fingerprint == b.Fingerprint
}
