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

// next returns the next event of s or fails the test.
func next(t *testing.T, s *events.Sub) events.Event {
	t.Helper()
	ev, err := s.Next(ctx(t))
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

func TestSubscribeAfter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after uint64
		lost  *events.Lost
		first uint64 // the first kept event replayed, 0 for none
	}{
		{"within the history", 4, nil, 5},
		{"at the last event", 6, nil, 0},
		{"just before the oldest", 2, nil, 3},
		{"past the history", 0, &events.Lost{From: 1, To: 2, Reason: events.LostPastHistory}, 3},
		{"further past", 1, &events.Lost{From: 2, To: 2, Reason: events.LostPastHistory}, 3},
		{"newer than the hub", 9, &events.Lost{From: 10, To: 0, Reason: events.LostRestarted}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := events.NewHub(events.History(4))
			defer h.Close()
			for i := range 6 { // 1..6; the history keeps 3..6
				h.Publish("x", i)
			}
			s := h.SubscribeAfter(tc.after, 8)
			defer s.Close()
			if tc.lost != nil {
				ev := next(t, s)
				if ev.Type != events.TypeLost || ev.Seq != 0 || ev.Data != *tc.lost {
					t.Fatalf("first event %+v, want lost %+v", ev, *tc.lost)
				}
			}
			if tc.first != 0 {
				for want := tc.first; want <= 6; want++ {
					if ev := next(t, s); ev.Seq != want {
						t.Fatalf("replayed %+v, want seq %d", ev, want)
					}
				}
			}
			h.Publish("live", nil)
			if ev := next(t, s); ev.Seq != 7 {
				t.Fatalf("live event %+v, want seq 7", ev)
			}
		})
	}
}

func TestSubscribeAfterReplaysExactlyTheMissed(t *testing.T) {
	h := events.NewHub(events.History(16))
	defer h.Close()
	s := h.Subscribe(16)
	h.Publish("a", 1)
	last := next(t, s).Seq
	s.Close()
	h.Publish("b", 2)
	h.Publish("c", 3)
	r := h.SubscribeAfter(last, 16)
	defer r.Close()
	h.Publish("d", 4)
	for _, want := range []string{"b", "c", "d"} {
		if ev := next(t, r); ev.Type != want {
			t.Fatalf("got %+v, want %s", ev, want)
		}
	}
}

func TestRelayKeepsNumbersAndReportsGaps(t *testing.T) {
	h := events.NewHub(events.History(8))
	defer h.Close()
	live := h.Subscribe(8)
	defer live.Close()
	h.Relay(events.Event{Seq: 11, Type: "a"})     // the first may have any number
	h.Relay(events.Event{Seq: 11, Type: "again"}) // dropped
	h.Relay(events.Event{Seq: 14, Type: "b"})
	for _, want := range []struct {
		typ string
		seq uint64
	}{{"a", 11}, {events.TypeLost, 0}, {"b", 14}} {
		if ev := next(t, live); ev.Type != want.typ || ev.Seq != want.seq {
			t.Fatalf("got %+v, want %+v", ev, want)
		}
	}
	r := h.SubscribeAfter(10, 8)
	defer r.Close()
	for _, want := range []string{"a", events.TypeLost, "b"} {
		if ev := next(t, r); ev.Type != want {
			t.Fatalf("replay: got %+v, want %s", ev, want)
		}
	}
	if h.Last() != 14 {
		t.Errorf("Last = %d", h.Last())
	}
}
