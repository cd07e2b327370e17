package node_test

import (
	"testing"
	"time"
)

// eventually checks cond every few milliseconds until it holds, and fails
// the test with what() when it has not within timeout.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatal(what())
		case <-tick.C:
		}
	}
}
