// Package events is the node's event stream: every change a node makes or
// learns of (contacts, people near me, presence, invitations, sessions) is
// published to a Hub as an Event with a type name and a JSON-ready payload,
// and fanned out to subscribers such as the local API's server-sent events.
//
// A subscriber that falls more than its buffer behind is cut off rather than
// allowed to stall the node: its Next returns the events it still holds and
// then ErrOverflow. Sequence numbers let a reader see that it missed nothing.
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

// Hub fans events out to subscribers. Its methods are safe for concurrent
// use; the zero value is not usable, call NewHub.
type Hub struct {
	mu     sync.Mutex
	seq    uint64
	subs   map[*Sub]struct{}
	closed bool

	wg       sync.WaitGroup
	forwards []event.Subscription
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[*Sub]struct{}{}} }

// Publish stamps an event and hands it to every subscriber without blocking.
func (h *Hub) Publish(typ string, data any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.seq++
	ev := Event{Seq: h.seq, Time: time.Now().UTC(), Type: typ, Data: data}
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			log.Warnw("event subscriber cut off", "type", typ, "buffer", cap(s.ch))
			s.endLocked(ErrOverflow)
			delete(h.subs, s)
		}
	}
}

// Subscribe returns a subscription that holds up to buffer events.
func (h *Hub) Subscribe(buffer int) *Sub {
	s := &Sub{hub: h, ch: make(chan Event, buffer), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.endLocked(ErrClosed)
		return s
	}
	h.subs[s] = struct{}{}
	return s
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
