// Package retry paces the retry loops of a node's services: exponential
// backoff with jitter (github.com/cenkalti/backoff), so that peers that
// failed together do not retry in step, and a wait that ends with its
// context.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Jitter is the share by which each wait is randomised either way.
const Jitter = 0.3

// Backoff is the wait before each retry: from first, doubling up to max,
// each randomised by Jitter. It is not safe for concurrent use; each loop
// has its own.
type Backoff struct {
	b *backoff.ExponentialBackOff
}

// New returns a Backoff whose first wait is about first and whose waits
// grow to about max.
func New(first, max time.Duration) *Backoff {
	b := &backoff.ExponentialBackOff{InitialInterval: first, RandomizationFactor: Jitter, Multiplier: 2, MaxInterval: max}
	b.Reset()
	return &Backoff{b: b}
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts again from the first wait, after a success.
func (b *Backoff) Reset() { b.b.Reset() }

// Wait waits the next wait, or less if ctx ends; it reports whether ctx is
// still on.
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits d, or less if ctx ends; it reports whether ctx is still on.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
