// Package events is the node's event stream: every change a node makes or
// learns of (contacts, people near me, presence, invitations, sessions) is
// published to a Hub as an Event with a type name and a JSON-ready payload,
// and fanned out to subscribers such as the local API's server-sent events.
//
// A subscriber that falls more than its buffer behind is cut off rather than
// allowed to stall the node: its Next returns the events it still holds and
// then ErrOverflow. Sequence numbers let a reader see that it missed nothing.
//
// A hub made with the History option keeps its latest events, so that a
// reader that reconnects can resume after the last event it saw
// (SubscribeAfter). Where events it asks for are no longer kept, or never
// reached the hub (Relay saw a gap), the subscription holds a Lost event
// (type TypeLost, sequence number 0) in their place.
package events

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

var log = logging.Logger("peercollab/events")

// Errors of a subscription.
var (
	// ErrOverflow means the subscriber fell too far behind and was cut off.
	ErrOverflow = errors.New("events: subscriber fell too far behind and was cut off")
	// ErrClosed means the subscription or the hub was closed.
	ErrClosed = errors.New("events: closed")
)

// Event is one entry of the stream.
type Event struct {
	// Seq numbers the events of a hub from 1, without gaps.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Type names the kind of change, such as "contact.changed".
	Type string `json:"type"`
	// Data is the payload; it must encode as JSON.
	Data any `json:"data"`
}

// TypeLost is the type of the event a subscription holds in place of
// events it will not see; its Data is a Lost and its Seq is 0.
const TypeLost = "events.lost"

// Lost is the payload of a TypeLost event: the events From to To
// (inclusive) are gone. To is 0 when the hub cannot tell how far the gap
// goes (the reader's last event is newer than the hub's: its numbering
// started again, as it does when the daemon restarts).
type Lost struct {
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
	Reason string `json:"reason"`
}

// Reasons of a Lost event.
const (
	// LostPastHistory: the events are older than those the hub keeps.
	LostPastHistory = "past-history"
	// LostRestarted: the reader's last event is newer than any of the hub,
	// which has started numbering again.
	LostRestarted = "restarted"
	// LostDropped: the events never reached the hub (a relayed stream
	// fell behind).
	LostDropped = "dropped"
)

// Option configures a Hub.
type Option func(*Hub)

// History makes a hub keep its latest n events for SubscribeAfter. Without
// it a hub keeps none.
func History(n int) Option { return func(h *Hub) { h.history = make([]Event, 0, max(n, 0)) } }

// Hub fans events out to subscribers. Its methods are safe for concurrent
// use; the zero value is not usable, call NewHub.
type Hub struct {
	mu     sync.Mutex
	seq    uint64
	subs   map[*Sub]struct{}
	closed bool
	// history is a ring of the latest events, oldest at start once full.
	history []Event
	start   int
	// relaying is set once Relay has seen an event.
	relaying bool

	wg       sync.WaitGroup
	forwards []event.Subscription
}

// NewHub returns an empty hub.
func NewHub(opts ...Option) *Hub {
	h := &Hub{subs: map[*Sub]struct{}{}}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Publish stamps an event and hands it to every subscriber without blocking.
func (h *Hub) Publish(typ string, data any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.seq++
	h.sendLocked(Event{Seq: h.seq, Time: time.Now().UTC(), Type: typ, Data: data})
}

// Relay publishes an event that another hub stamped, keeping its Seq and
// Time, so that this hub (with its history) serves another's stream. The
// first event relayed may have any number (the other hub's earlier events
// came before this hub relayed them). An event numbered at or below the
// last one relayed is dropped; one that skips numbers first hands the
// subscribers a Lost event (LostDropped) for those it skipped.
func (h *Hub) Relay(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || ev.Seq <= h.seq {
		return
	}
	if !h.relaying {
		h.relaying = true
		h.seq = ev.Seq - 1
	}
	if ev.Seq > h.seq+1 {
		h.fanOutLocked(lostEvent(h.seq+1, ev.Seq-1, LostDropped))
	}
	h.seq = ev.Seq
	h.sendLocked(ev)
}

// lostEvent is the TypeLost event for the events from to to.
func lostEvent(from, to uint64, reason string) Event {
	return Event{Time: time.Now().UTC(), Type: TypeLost, Data: Lost{From: from, To: to, Reason: reason}}
}

// sendLocked keeps ev in the history and hands it to every subscriber.
func (h *Hub) sendLocked(ev Event) {
	if c := cap(h.history); c > 0 {
		if len(h.history) < c {
			h.history = append(h.history, ev)
		} else {
			h.history[h.start] = ev
			h.start = (h.start + 1) % c
		}
	}
	h.fanOutLocked(ev)
}

// fanOutLocked hands ev to every subscriber, cutting off those whose
// buffer is full.
func (h *Hub) fanOutLocked(ev Event) {
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			log.Warnw("event subscriber cut off", "type", ev.Type, "buffer", cap(s.ch))
			s.endLocked(ErrOverflow)
			delete(h.subs, s)
		}
	}
}

// Subscribe returns a subscription that holds up to buffer events.
func (h *Hub) Subscribe(buffer int) *Sub {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subscribeLocked(nil, buffer)
}

func (h *Hub) subscribeLocked(replay []Event, buffer int) *Sub {
	s := &Sub{hub: h, ch: make(chan Event, len(replay)+buffer), done: make(chan struct{})}
	for _, ev := range replay {
		s.ch <- ev
	}
	if h.closed {
		s.endLocked(ErrClosed)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// SubscribeAfter returns a subscription that first holds the kept events
// numbered after `after`, then the new ones as Subscribe does (up to buffer
// of them). When the hub no longer keeps some of the events after `after`,
// a Lost event (LostPastHistory) comes first in their place; when `after`
// is newer than the hub's last event (its numbering started again), a Lost
// event (LostRestarted, To 0) comes first and then every kept event.
// SubscribeAfter(0, n) replays the whole history.
func (h *Hub) SubscribeAfter(after uint64, buffer int) *Sub {
	h.mu.Lock()
	defer h.mu.Unlock()
	var replay []Event
	kept := h.historyLocked()
	switch {
	case after > h.seq:
		replay = append(replay, lostEvent(after+1, 0, LostRestarted))
		after = 0
	case after < h.seq && (len(kept) == 0 || kept[0].Seq > after+1):
		// Events after `after` are gone: those before the oldest kept
		// one, or all of them when nothing is kept.
		to := h.seq
		if len(kept) > 0 {
			to = kept[0].Seq - 1
		}
		if to >= after+1 {
			replay = append(replay, lostEvent(after+1, to, LostPastHistory))
		}
	}
	prev := uint64(0)
	for _, ev := range kept {
		if ev.Seq <= after {
			prev = ev.Seq
			continue
		}
		if prev != 0 && ev.Seq > prev+1 { // Relay skipped these
			replay = append(replay, lostEvent(prev+1, ev.Seq-1, LostDropped))
		}
		replay = append(replay, ev)
		prev = ev.Seq
	}
	return h.subscribeLocked(replay, buffer)
}

// historyLocked returns the kept events, oldest first.
func (h *Hub) historyLocked() []Event {
	out := make([]Event, 0, len(h.history))
	out = append(out, h.history[h.start:]...)
	return append(out, h.history[:h.start]...)
}

// Last returns the sequence number of the hub's latest event (0 before the
// first).
func (h *Hub) Last() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

// Forward publishes every event of type evtType (a pointer to a value of the
// type, as eventbus.Subscribe takes) emitted on bus, converted by convert,
// until the hub is closed. convert runs on the forwarding goroutine.
func Forward[T any](h *Hub, bus event.Bus, convert func(T) (typ string, data any)) error {
	sub, err := bus.Subscribe(new(T), eventbus.BufSize(256), eventbus.Name("peercollab/events"))
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		sub.Close()
		return ErrClosed
	}
	h.forwards = append(h.forwards, sub)
	h.wg.Go(func() {
		for e := range sub.Out() {
			v, ok := e.(T)
			if !ok {
				log.Errorw("unexpected event type", "type", reflect.TypeOf(e))
				continue
			}
			h.Publish(convert(v))
		}
	})
	return nil
}

// Close ends every subscription and forwarding. It is idempotent.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	for s := range h.subs {
		s.endLocked(ErrClosed)
	}
	h.subs = nil
	forwards := h.forwards
	h.mu.Unlock()
	for _, f := range forwards {
		f.Close()
	}
	h.wg.Wait()
	return nil
}

// Sub is one subscription. Next and Close may be called from different
// goroutines.
type Sub struct {
	hub  *Hub
	ch   chan Event
	done chan struct{}
	once sync.Once
	err  error // set before done is closed
}

// endLocked ends the subscription with err; the hub's lock is held.
func (s *Sub) endLocked(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

// Next returns the next event, waiting until there is one, ctx is done, or
// the subscription ends (ErrOverflow, ErrClosed). Events already buffered
// are returned before the error.
func (s *Sub) Next(ctx context.Context) (Event, error) {
	select {
	case ev := <-s.ch:
		return ev, nil
	default:
	}
	select {
	case ev := <-s.ch:
		return ev, nil
	case <-s.done:
		select {
		case ev := <-s.ch:
			return ev, nil
		default:
			return Event{}, s.err
		}
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Close ends the subscription. It is idempotent.
func (s *Sub) Close() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if s.hub.subs != nil {
		delete(s.hub.subs, s)
	}
	s.endLocked(ErrClosed)
	return nil
}
