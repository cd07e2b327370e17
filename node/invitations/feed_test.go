package invitations

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/protocols/invite"
)

// TestSubscribe: a subscription gets every change after it began, in
// order; Close ends it.
func TestSubscribe(t *testing.T) {
	b := newBench(t, Limits{})
	sub := b.s.Subscribe()
	defer sub.Close()
	who := newInviter(t)
	inv := invitation(who, nil, time.Hour)
	if r := reason(t, b.invite(who, "/ip4/10.0.0.1/tcp/1", inv)); r != invite.NoReason {
		t.Fatalf("refused: %v", r)
	}
	if _, err := b.s.Decline(inv.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var states []State
	for len(states) < 2 {
		r, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", states, err)
		}
		if r.ID != inv.ID || r.Card != nil {
			t.Fatalf("change %+v", r)
		}
		states = append(states, r.State)
	}
	if states[0] != Pending || states[1] != Declined {
		t.Fatalf("changes %v", states)
	}
	sub.Close()
	if _, err := sub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestFeedOverflow: a subscriber that falls SubBuffer changes behind gets
// what it holds, then ErrOverflow; the others are not held up.
func TestFeedOverflow(t *testing.T) {
	var f Feed
	slow, fast := f.Subscribe(), f.Subscribe()
	defer fast.Close()
	ctx := context.Background()
	for i := range SubBuffer + 1 {
		f.Publish(Record{Batch: string(rune('a' + i%26))})
		if _, err := fast.Next(ctx); err != nil {
			t.Fatalf("fast subscriber at %d: %v", i, err)
		}
	}
	for i := range SubBuffer {
		if _, err := slow.Next(ctx); err != nil {
			t.Fatalf("slow subscriber at %d: %v", i, err)
		}
	}
	if _, err := slow.Next(ctx); !errors.Is(err, ErrOverflow) {
		t.Fatalf("overflow: %v", err)
	}
	f.Close()
	if _, err := fast.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the feed closed: %v", err)
	}
}

// TestPolicy: the service keeps its receiving policy in the settings
// database, where nodes kept it before; a damaged or unknown one counts as
// Anyone.
func TestPolicy(t *testing.T) {
	b := newBench(t, Limits{})
	settings, err := state.Open(filepath.Join(t.TempDir(), state.File), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { settings.Close() })
	if err := settings.Put("settings", "invitation_policy", Contacts); err != nil {
		t.Fatal(err)
	}
	b.cfg.Settings = settings
	b.restart()
	if p := b.s.Policy(); p != Contacts {
		t.Fatalf("policy %q, want the stored one", p)
	}
	stranger := newInviter(t)
	ack := b.invite(stranger, "/ip4/10.0.0.1/tcp/1", invitation(stranger, nil, time.Hour))
	if ack.Response == nil || ack.Response.Action != invite.Declined || ack.Response.Reason != invite.NotAccepting {
		t.Fatalf("a stranger's invitation under contacts only: %+v", ack)
	}
	if err := b.s.SetPolicy("everyone"); !errors.Is(err, ErrBadPolicy) {
		t.Fatalf("SetPolicy(everyone) = %v", err)
	}
	if err := b.s.SetPolicy(Nobody); err != nil {
		t.Fatal(err)
	}
	b.restart()
	if p := b.s.Policy(); p != Nobody {
		t.Fatalf("after a restart the policy is %q", p)
	}
	settings.Put("settings", "invitation_policy", "sometimes")
	b.restart()
	if p := b.s.Policy(); p != Anyone {
		t.Fatalf("an unknown stored policy reads as %q", p)
	}
}

// TestAcceptLaunches: accepting runs the application's launch command
// (outside the service's lock) and records that it did.
func TestAcceptLaunches(t *testing.T) {
	b := newBench(t, Limits{})
	b.mu.Lock()
	b.launch = "true"
	b.mu.Unlock()
	who := newInviter(t)
	inv := invitation(who, nil, time.Hour)
	reason(t, b.invite(who, "/ip4/10.0.0.1/tcp/1", inv))
	r, err := b.s.Accept(inv.ID)
	if err != nil || !r.Launched || r.State != Accepted {
		t.Fatalf("Accept = %+v, %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(b.cfg.Home, "launch", inv.ID+".log")); err != nil {
		t.Fatalf("no launch log: %v", err)
	}
}
