package invitations

import (
	"context"
	"errors"
	"sync"
)

// Errors of a subscription.
var (
	// ErrOverflow means a subscriber fell more than SubBuffer changes
	// behind and missed some: it should subscribe again and List what it
	// follows.
	ErrOverflow = errors.New("invitations: subscriber fell too far behind and missed changes")
	// ErrClosed means the subscription or the service was closed.
	ErrClosed = errors.New("invitations: closed")
)

// SubBuffer is how many changes a subscriber may fall behind before it is
// cut off with ErrOverflow.
const SubBuffer = 4096

// Feed hands every change of an invitation, in order, to its
// subscriptions. The service publishes to one; a stand-in for the service
// (in tests) may use one too. The zero value is ready to use; its methods
// are safe for concurrent use, and Publish never blocks.
type Feed struct {
	mu     sync.Mutex
	subs   map[*Sub]struct{}
	closed bool
}

// Subscribe returns a subscription to the changes published from now on.
func (f *Feed) Subscribe() *Sub {
	s := &Sub{feed: f, wake: make(chan struct{}, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		s.err = ErrClosed
		return s
	}
	if f.subs == nil {
		f.subs = map[*Sub]struct{}{}
	}
	f.subs[s] = struct{}{}
	return s
}

// Publish hands r to every subscription.
func (f *Feed) Publish(r Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if !s.put(r) {
			delete(f.subs, s)
		}
	}
}

// Close ends every subscription (ErrClosed once their changes are read).
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		s.end(ErrClosed)
	}
	f.subs = nil
}

// Sub is a subscription to invitation changes. Next and Close may be
// called from different goroutines.
type Sub struct {
	feed *Feed
	wake chan struct{}

	mu    sync.Mutex
	queue []Record
	err   error // set once the subscription ends
}

// put queues r; false when the subscriber is too far behind (it is then
// cut off).
func (s *Sub) put(r Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	if len(s.queue) >= SubBuffer {
		s.err = ErrOverflow
	} else {
		s.queue = append(s.queue, r)
	}
	s.signal()
	return s.err == nil
}

func (s *Sub) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.signal()
}

func (s *Sub) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Next returns the next change, waiting until there is one, ctx is done,
// or the subscription ends (ErrOverflow, ErrClosed). Changes already
// queued are returned before the error.
func (s *Sub) Next(ctx context.Context) (Record, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			r := s.queue[0]
			s.queue[0] = Record{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return r, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return Record{}, err
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
}

// Close ends the subscription. It is idempotent.
func (s *Sub) Close() error {
	s.feed.mu.Lock()
	delete(s.feed.subs, s)
	s.feed.mu.Unlock()
	s.end(ErrClosed)
	return nil
}
