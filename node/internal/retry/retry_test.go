package retry

import (
	"context"
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterAndResets(t *testing.T) {
	b := New(100*time.Millisecond, time.Second)
	var waits []time.Duration
	for range 8 {
		waits = append(waits, b.Next())
	}
	lo, hi := func(d time.Duration) time.Duration { return time.Duration(float64(d) * (1 - Jitter)) },
		func(d time.Duration) time.Duration { return time.Duration(float64(d) * (1 + Jitter)) }
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000, 1000}
	for i, w := range waits {
		d := want[i] * time.Millisecond
		if w < lo(d) || w > hi(d) {
			t.Errorf("wait %d = %v, want %v ± %.0f%%", i, w, d, 100*Jitter)
		}
	}
	b.Reset()
	if w := b.Next(); w > hi(100*time.Millisecond) {
		t.Errorf("after Reset the wait is %v", w)
	}
	// Jitter: two backoffs do not wait alike.
	same := true
	c := New(100*time.Millisecond, time.Second)
	for range 5 {
		if c.Next() != b.Next() {
			same = false
		}
	}
	if same {
		t.Error("two backoffs waited alike five times: no jitter")
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if New(time.Hour, time.Hour).Wait(ctx) {
		t.Fatal("Wait reported a cancelled context as on")
	}
}
