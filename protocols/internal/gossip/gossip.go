// Package gossip holds what peercollab's gossip topics do the same way:
// publishing a node's own message to the peers that may have it and to no
// one else, and padding sealed messages to a few sizes, so that their
// length says little of what they carry.
//
// go-libp2p-pubsub's peer filter (pubsub.WithPeerFilter) keeps a peer out of
// a topic's mesh and its gossip, but a node's own messages are flooded to
// every peer that announced the topic (flood publishing), filter or not.
// Publish closes that gap: it hands the message to pubsub as a batch whose
// scheduler drops every peer that allow refuses.
package gossip

import (
	"context"
	"errors"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// only is an RPC scheduler that sends to the allowed peers alone.
type only struct {
	allow func(peer.ID) bool
	pubsub.RoundRobinMessageIDScheduler
}

func (o *only) AddRPC(p peer.ID, msgID string, rpc *pubsub.RPC) {
	if o.allow(p) {
		o.RoundRobinMessageIDScheduler.AddRPC(p, msgID, rpc)
	}
}

// Publish publishes data on t (a topic of ps) and sends it only to the
// peers for which allow returns true. The topic's validators see the
// message first, as for pubsub's own Publish (with this node as its
// source). allow runs on pubsub's event loop: it must answer at once and
// never wait for anything that waits for pubsub. ps must be running: pubsub
// takes a batch without watching ctx.
func Publish(ctx context.Context, ps *pubsub.PubSub, t *pubsub.Topic, data []byte, allow func(peer.ID) bool) error {
	var b pubsub.MessageBatch
	if err := t.AddToBatch(ctx, &b, data); err != nil {
		return err
	}
	return ps.PublishBatch(&b, func(o *pubsub.BatchPublishOptions) error {
		o.Strategy = &only{allow: allow}
		return nil
	})
}

// ErrBadPadding means a padded message has no padding marker.
var ErrBadPadding = errors.New("gossip: malformed padding")

// Pad returns b followed by a marker byte (0x80) and zeros up to the
// smallest of buckets (ascending sizes) that holds it, or up to the next
// multiple of the largest bucket.
func Pad(b []byte, buckets []int) []byte {
	n := len(b) + 1
	size := 0
	for _, s := range buckets {
		if s >= n {
			size = s
			break
		}
	}
	if size == 0 {
		last := buckets[len(buckets)-1]
		size = (n + last - 1) / last * last
	}
	out := make([]byte, size)
	copy(out, b)
	out[len(b)] = 0x80
	return out
}

// Unpad returns what Pad was given.
func Unpad(b []byte) ([]byte, error) {
	i := len(b) - 1
	for i >= 0 && b[i] == 0 {
		i--
	}
	if i < 0 || b[i] != 0x80 {
		return nil, ErrBadPadding
	}
	return b[:i], nil
}
