package session

import (
	"cmp"
	"maps"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Gap is a run of a sender's messages that has not arrived: sequence
// numbers From to To, inclusive.
type Gap struct {
	Sender peer.ID `json:"sender"`
	From   uint64  `json:"from"`
	To     uint64  `json:"to"`
}

// MaxHeld is how many early messages Order holds per sender; beyond that
// it drops the furthest ahead (they come back as a gap to repair), so that
// a sender that skips numbers cannot fill the memory.
const MaxHeld = 1024

// Order delivers each sender's messages in sequence, numbered from 1: it
// holds a message that arrives early until the ones before it have come,
// drops one that comes twice, and says which are missing. T is the
// message. The zero value is not usable; call NewOrder. Order is not safe
// for concurrent use. Its work does not grow with the numbers it is given
// (a sender or heartbeat may claim any), only with the messages held.
type Order[T any] struct {
	next map[peer.ID]uint64 // the next sequence number to deliver
	seen map[peer.ID]uint64 // the highest sequence number known to exist
	held map[peer.ID]map[uint64]T
}

// NewOrder returns an Order that expects every sender's first message.
func NewOrder[T any]() *Order[T] {
	return &Order[T]{next: map[peer.ID]uint64{}, seen: map[peer.ID]uint64{}, held: map[peer.ID]map[uint64]T{}}
}

// Next is the sequence number of sender's next message to deliver.
func (o *Order[T]) Next(sender peer.ID) uint64 {
	if n, ok := o.next[sender]; ok {
		return n
	}
	return 1
}

// Start makes sender's next message seq (for a member that joins late or
// restarts: it starts where it is).
func (o *Order[T]) Start(sender peer.ID, seq uint64) {
	if seq > o.Next(sender) {
		o.next[sender] = seq
		o.drain(sender, nil)
	}
}

// Add takes message m, number seq of sender, and returns the messages now
// deliverable, in order.
func (o *Order[T]) Add(sender peer.ID, seq uint64, m T) []T {
	next := o.Next(sender)
	if seq < next {
		return nil // seen before
	}
	o.Saw(sender, seq)
	if seq > next {
		h := o.held[sender]
		if h == nil {
			h = map[uint64]T{}
			o.held[sender] = h
		}
		h[seq] = m
		if len(h) > MaxHeld {
			delete(h, slices.Max(slices.Collect(maps.Keys(h))))
		}
		return nil
	}
	o.next[sender] = next + 1
	return o.drain(sender, []T{m})
}

// drain appends the held messages that follow on, in order.
func (o *Order[T]) drain(sender peer.ID, out []T) []T {
	h := o.held[sender]
	for {
		n := o.Next(sender)
		for k := range h {
			if k < n {
				delete(h, k) // overtaken by Start
			}
		}
		m, ok := h[n]
		if !ok {
			break
		}
		delete(h, n)
		out = append(out, m)
		o.next[sender] = n + 1
	}
	if len(h) == 0 {
		delete(o.held, sender)
	}
	return out
}

// Saw records that sender's message seq exists (a heartbeat says how far
// each sender got), so that a missing tail shows up as a gap.
func (o *Order[T]) Saw(sender peer.ID, seq uint64) {
	if seq > o.seen[sender] {
		o.seen[sender] = seq
	}
}

// Gaps lists what is missing: for each sender, the runs between what was
// delivered and the highest message known to exist.
func (o *Order[T]) Gaps() []Gap {
	var out []Gap
	senders := slices.Collect(maps.Keys(o.seen))
	slices.SortFunc(senders, func(a, b peer.ID) int { return cmp.Compare(a, b) })
	for _, s := range senders {
		from := o.Next(s)
		for _, seq := range slices.Sorted(maps.Keys(o.held[s])) {
			if seq > from {
				out = append(out, Gap{s, from, seq - 1})
			}
			from = seq + 1
		}
		if from != 0 && from <= o.seen[s] {
			out = append(out, Gap{s, from, o.seen[s]})
		}
	}
	return out
}

// Skip gives up on sender's messages before seq (they cannot be had), and
// returns the held messages that are now deliverable. Skip with seq 0 (one
// past the highest number there is) does nothing.
func (o *Order[T]) Skip(sender peer.ID, seq uint64) []T {
	if seq <= o.Next(sender) {
		return nil
	}
	o.next[sender] = seq
	return o.drain(sender, nil)
}

// Positions returns the next sequence number to deliver of every sender
// heard from, for storing a member's place.
func (o *Order[T]) Positions() map[peer.ID]uint64 { return maps.Clone(o.next) }
