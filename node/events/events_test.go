package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"go.uber.org/goleak"

	"github.com/peercollab/peercollab/node/events"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestFanOutInOrder(t *testing.T) {
	h := events.NewHub()
	defer h.Close()
	a, b := h.Subscribe(8), h.Subscribe(8)
	for i := range 3 {
		h.Publish("x", i)
	}
	for _, s := range []*events.Sub{a, b} {
		for want := uint64(1); want <= 3; want++ {
			ev, err := s.Next(ctx(t))
			if err != nil || ev.Seq != want || ev.Data != int(want-1) {
				t.Fatalf("Next = %+v, %v; want seq %d", ev, err, want)
			}
		}
	}
}

func TestSlowSubscriberCutOff(t *testing.T) {
	h := events.NewHub()
	defer h.Close()
	slow, fast := h.Subscribe(2), h.Subscribe(16)
	for i := range 5 {
		h.Publish("x", i)
	}
	for range 2 {
		if _, err := slow.Next(ctx(t)); err != nil {
			t.Fatalf("buffered events must come first: %v", err)
		}
	}
	if _, err := slow.Next(ctx(t)); !errors.Is(err, events.ErrOverflow) {
		t.Fatalf("err = %v, want ErrOverflow", err)
	}
	for range 5 {
		if _, err := fast.Next(ctx(t)); err != nil {
			t.Fatalf("fast subscriber affected: %v", err)
		}
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	h := events.NewHub()
	s := h.Subscribe(1)
	h.Close()
	if _, err := s.Next(ctx(t)); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("err = %v", err)
	}
	if _, err := h.Subscribe(1).Next(ctx(t)); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
	h.Close() // idempotent
	s.Close()
}

type evtTest struct{ N int }

func TestForward(t *testing.T) {
	bus := eventbus.NewBus()
	h := events.NewHub()
	defer h.Close()
	if err := events.Forward(h, bus, func(e evtTest) (string, any) { return "test", e.N }); err != nil {
		t.Fatal(err)
	}
	s := h.Subscribe(4)
	em, err := bus.Emitter(new(evtTest))
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	em.Emit(evtTest{N: 7})
	ev, err := s.Next(ctx(t))
	if err != nil || ev.Type != "test" || ev.Data != 7 {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
}
