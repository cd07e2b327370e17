package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node"
)

// An idle connection from a stranger is closed once the grace period is
// over; a contact's stays.
func TestIdleStrangersTrimmed(t *testing.T) {
	cfg := testConfig(t, "Alice")
	cfg.ConnGrace = time.Second
	a := newNode(t, cfg)
	stranger := newNode(t, testConfig(t, "Mallory"))
	friend := newNode(t, testConfig(t, "Bob"))
	card, err := friend.MyCard()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.AddCard(card.Marshal(), node.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node.Node{stranger, friend} {
		if err := n.Host().Connect(context.Background(), peer.AddrInfo{ID: a.Host().ID(), Addrs: a.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	eventually(t, 10*time.Second, func() bool {
		return a.Host().Network().Connectedness(stranger.Host().ID()) != network.Connected
	}, func() string { return "the idle stranger is still connected" })
	t.Logf("idle stranger trimmed after %v (grace %v)", time.Since(start).Round(time.Millisecond), cfg.ConnGrace)
	if a.Host().Network().Connectedness(friend.Host().ID()) != network.Connected {
		t.Fatal("the contact's connection was trimmed too")
	}
}
