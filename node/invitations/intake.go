package invitations

import (
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"

	"github.com/peercollab/peercollab/protocols/invite"
)

// Defaults of Limits.
const (
	DefaultStrangerInvitations = 100
	DefaultStrangerBytes       = 2 << 20
	DefaultContactInvitations  = 1000
	DefaultContactBytes        = 16 << 20
	DefaultPerPeer             = 4
	DefaultPerAddr             = 16
	DefaultPerNetwork          = 32
	DefaultStrangerExpiry      = 5 * time.Minute
	DefaultAddrRate            = rate.Limit(0.5) // a second: 30 a minute
	DefaultAddrBurst           = 20
	DefaultNetworkRate         = rate.Limit(1) // a second
	DefaultNetworkBurst        = 40
	DefaultLimiters            = 4096
	DefaultStrangerHistory     = 256
)

// Networks of a source address that share a stranger's shares.
const (
	networkBits4 = 24
	networkBits6 = 48
)

// recordOverhead is what a record costs beyond its data, card, message and
// application ID: its index entry in memory and on disk, roughly.
const recordOverhead = 512

// maxCost is the most one invitation can cost.
const maxCost = invite.MaxRequestSize + recordOverhead

// Limits bound what others can make a node keep. Zero (or negative)
// fields mean the defaults given on each. Budgets count unanswered
// received invitations; an answered one frees its place at once.
type Limits struct {
	// StrangerInvitations and StrangerBytes bound the unanswered
	// invitations from strangers kept at once. Default: 100 and 2 MiB.
	StrangerInvitations int
	StrangerBytes       int64
	// ContactInvitations and ContactBytes do the same for contacts;
	// strangers never use them. Default: 1000 and 16 MiB.
	ContactInvitations int
	ContactBytes       int64
	// PerPeer, PerAddr and PerNetwork bound the share of the strangers'
	// budget that one peer ID, one source address, and one /24 (IPv4) or
	// /48 (IPv6) may hold. Default: 4, 16 and 32.
	PerPeer, PerAddr, PerNetwork int
	// StrangerExpiry is the longest a stranger's invitation is kept
	// unanswered, whatever expiry it asks for. Default: 5 minutes.
	StrangerExpiry time.Duration
	// AddrRate and AddrBurst rate-limit strangers' invitations per source
	// address; NetworkRate and NetworkBurst per /24 or /48. Default: 30 a
	// minute with bursts of 20, and 60 a minute with bursts of 40.
	AddrRate     rate.Limit
	AddrBurst    int
	NetworkRate  rate.Limit
	NetworkBurst int
	// Limiters bounds each table of rate limiters (peer IDs of contacts,
	// of strangers, addresses, networks). Default: 4096.
	Limiters int
	// StrangerHistory is how many answered invitations from strangers stay
	// listed. Default: 256.
	StrangerHistory int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.StrangerInvitations, DefaultStrangerInvitations)
	def(&l.ContactInvitations, DefaultContactInvitations)
	def(&l.PerPeer, DefaultPerPeer)
	def(&l.PerAddr, DefaultPerAddr)
	def(&l.PerNetwork, DefaultPerNetwork)
	def(&l.AddrBurst, DefaultAddrBurst)
	def(&l.NetworkBurst, DefaultNetworkBurst)
	def(&l.Limiters, DefaultLimiters)
	def(&l.StrangerHistory, DefaultStrangerHistory)
	if l.StrangerBytes <= 0 {
		l.StrangerBytes = DefaultStrangerBytes
	}
	if l.ContactBytes <= 0 {
		l.ContactBytes = DefaultContactBytes
	}
	if l.StrangerExpiry <= 0 {
		l.StrangerExpiry = DefaultStrangerExpiry
	}
	if l.AddrRate <= 0 {
		l.AddrRate = DefaultAddrRate
	}
	if l.NetworkRate <= 0 {
		l.NetworkRate = DefaultNetworkRate
	}
	return l
}

// source is where a received invitation came from: the IP address of its
// connection, and the network around it. Both are zero for an address
// without IP (all such sources share one).
type source struct {
	addr    netip.Addr
	network netip.Prefix
}

// sourceOf reads the first IP address of a connection's remote address: a
// relayed connection's is the relay's.
func sourceOf(a ma.Multiaddr) source {
	for _, c := range a {
		switch c.Code() {
		case ma.P_IP4, ma.P_IP6:
			ip, ok := netip.AddrFromSlice(c.RawValue())
			if !ok {
				return source{}
			}
			ip = ip.Unmap()
			bits := networkBits6
			if ip.Is4() {
				bits = networkBits4
			}
			n, _ := ip.Prefix(bits)
			return source{addr: ip, network: n}
		}
	}
	return source{}
}

// costOf is what keeping an invitation costs, in bytes.
func costOf(inv *invite.Invitation, card []byte) int64 {
	return int64(len(inv.Data) + len(card) + len(inv.Message) + len(inv.AppID) + recordOverhead)
}

// usage is what a budget holds.
type usage struct {
	n     int
	bytes int64
}

// intake is the accounting of received invitations: budgets, strangers'
// shares and rate limiters. Its maps of shares hold only keys with a
// charged record, so they are bounded by the budget.
type intake struct {
	lim                 Limits
	strangers, contacts usage
	byPeer              map[peer.ID]int
	byAddr              map[netip.Addr]int
	byNetwork           map[netip.Prefix]int
	contactPeers        *limiters[peer.ID]
	strangerPeers       *limiters[peer.ID]
	addrs               *limiters[netip.Addr]
	networks            *limiters[netip.Prefix]
	// full is set while the strangers' budget is full (for logging once
	// when that begins).
	full bool
}

func newIntake(lim Limits, peerRate rate.Limit, peerBurst int) intake {
	return intake{lim: lim, byPeer: map[peer.ID]int{}, byAddr: map[netip.Addr]int{}, byNetwork: map[netip.Prefix]int{},
		contactPeers:  newLimiters[peer.ID](peerRate, peerBurst, lim.Limiters),
		strangerPeers: newLimiters[peer.ID](peerRate, peerBurst, lim.Limiters),
		addrs:         newLimiters[netip.Addr](lim.AddrRate, lim.AddrBurst, lim.Limiters),
		networks:      newLimiters[netip.Prefix](lim.NetworkRate, lim.NetworkBurst, lim.Limiters)}
}

// allow applies the rate limits, the narrowest first, so that a source
// refused for itself takes nothing from its network's bucket. It tells
// which limiter refused (a table with no room refuses too), or "".
func (in *intake) allow(from peer.ID, src source, stranger bool, now time.Time) string {
	switch {
	case !stranger:
		if !in.contactPeers.allow(from, now) {
			return "peer"
		}
	case !in.strangerPeers.allow(from, now):
		return "peer"
	case !in.addrs.allow(src.addr, now):
		return "address"
	case !in.networks.allow(src.network, now):
		return "network"
	}
	return ""
}

// Why an invitation has no room (see room).
const (
	fullBudget  = "budget"
	fullPeer    = "peer's share"
	fullAddr    = "address's share"
	fullNetwork = "network's share"
)

// room tells why e does not fit its budget or, for a stranger, its
// shares: one of the full* constants, or "" when it fits.
func (in *intake) room(e *entry) string {
	switch {
	case !e.stranger:
		if in.contacts.n >= in.lim.ContactInvitations || in.contacts.bytes+e.cost > in.lim.ContactBytes {
			return fullBudget
		}
	case in.strangers.n >= in.lim.StrangerInvitations || in.strangers.bytes+e.cost > in.lim.StrangerBytes:
		return fullBudget
	case in.byPeer[e.Peer] >= in.lim.PerPeer:
		return fullPeer
	case in.byAddr[e.src.addr] >= in.lim.PerAddr:
		return fullAddr
	case in.byNetwork[e.src.network] >= in.lim.PerNetwork:
		return fullNetwork
	}
	return ""
}

// charge counts an unanswered received invitation in its budget.
func (in *intake) charge(e *entry) {
	if e.charged {
		return
	}
	e.charged = true
	if !e.stranger {
		in.contacts.n++
		in.contacts.bytes += e.cost
		return
	}
	in.strangers.n++
	in.strangers.bytes += e.cost
	in.byPeer[e.Peer]++
	in.byAddr[e.src.addr]++
	in.byNetwork[e.src.network]++
}

// release frees what charge counted.
func (in *intake) release(e *entry) {
	if !e.charged {
		return
	}
	e.charged = false
	if !e.stranger {
		in.contacts.n--
		in.contacts.bytes -= e.cost
		return
	}
	in.strangers.n--
	in.strangers.bytes -= e.cost
	dec(in.byPeer, e.Peer)
	dec(in.byAddr, e.src.addr)
	dec(in.byNetwork, e.src.network)
}

func dec[K comparable](m map[K]int, k K) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}

func (s *Service) releaseLocked(e *entry) { s.in.release(e) }

// limiters is a bounded table of token buckets that share a rate and a
// burst. A limiter whose bucket is full again is the same as a fresh one,
// so it may be dropped; the table drops such limiters only when it needs
// room, and when none is full it refuses a new key rather than forget one
// it limits. Not safe for concurrent use.
type limiters[K comparable] struct {
	limit rate.Limit
	burst int
	max   int
	m     map[K]*rate.Limiter
	// noneFullBefore is the earliest time a limiter of the table can be
	// full again, as the last sweep found: no sweep before then.
	noneFullBefore time.Time
}

func newLimiters[K comparable](limit rate.Limit, burst, max int) *limiters[K] {
	return &limiters[K]{limit: limit, burst: burst, max: max, m: map[K]*rate.Limiter{}}
}

// allow takes a token of k's bucket at now; it reports false when the
// bucket is empty, or when k has none and the table has no room.
func (t *limiters[K]) allow(k K, now time.Time) bool {
	l, ok := t.m[k]
	if !ok {
		if len(t.m) >= t.max && !t.sweep(now) {
			return false
		}
		l = rate.NewLimiter(t.limit, t.burst)
		t.m[k] = l
		// The token taken below is back after one refill: the new
		// limiter may be full again that soon.
		if d, ok := t.refill(1); ok && now.Add(d).Before(t.noneFullBefore) {
			t.noneFullBefore = now.Add(d)
		}
	}
	return l.AllowN(now, 1)
}

// refill is how long the bucket takes to gain tokens; false if never.
func (t *limiters[K]) refill(tokens float64) (time.Duration, bool) {
	if t.limit == rate.Inf {
		return 0, true
	}
	if t.limit <= 0 {
		return 0, false
	}
	return time.Duration(tokens/float64(t.limit)*float64(time.Second)) + 1, true
}

// sweep drops the limiters whose buckets are full at now and reports
// whether that made room. It does not look before the earliest time a
// bucket can be full again (noneFullBefore), so a table full of busy
// limiters costs one pass per refill, not one per refused key.
func (t *limiters[K]) sweep(now time.Time) bool {
	if now.Before(t.noneFullBefore) {
		return false
	}
	next := now.Add(never)
	for k, l := range t.m {
		missing := float64(t.burst) - l.TokensAt(now)
		if missing <= 0 {
			delete(t.m, k)
			continue
		}
		if d, ok := t.refill(missing); ok && now.Add(d).Before(next) {
			next = now.Add(d)
		}
	}
	t.noneFullBefore = next
	return len(t.m) < t.max
}

// never is later than any bucket of the table can refill.
const never = 100 * 365 * 24 * time.Hour

// len is how many limiters the table holds.
func (t *limiters[K]) len() int { return len(t.m) }
