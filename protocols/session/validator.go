package session

import (
	"context"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/protocols/internal/gossip"
)

// Publish publishes an envelope (from SealTopic) on a session's topic t and
// sends it only to the peers allow accepts: the host and the members, so
// that a peer that merely subscribed to the topic gets nothing. allow runs
// on pubsub's goroutine and must answer at once (see
// protocols/internal/gossip).
func Publish(ctx context.Context, ps *pubsub.PubSub, t *pubsub.Topic, envelope []byte, allow func(peer.ID) bool) error {
	return gossip.Publish(ctx, ps, t, envelope, allow)
}

// Membership is what a validator needs to know of a session. Its methods
// are called on pubsub's validation goroutines: they must answer at once,
// and never wait for a lock held while pubsub is called.
type Membership interface {
	// Host is the session's host.
	Host() peer.ID
	// IsMember reports whether p is a current member.
	IsMember(p peer.ID) bool
	// Key returns the session key of an epoch, when this node holds it.
	Key(epoch uint32) (Key, bool)
	// Missing is told that the host or a member published an envelope
	// sealed with the key of an epoch this node does not hold (a new
	// epoch: it should ask the host for the keys).
	Missing(epoch uint32)
}

// Validator accepts on session sessionID's topic an envelope that opens
// with a key of the session and carries a roster or heartbeat that the host
// published, or data that a current member signed and published (or the
// host passed on). What it accepts it hands on as the message's
// ValidatorData, a *TopicMessage. An envelope of an epoch whose key this
// node lacks is ignored (Missing is told when the host or a member sent
// it).
func Validator(sessionID string, m Membership) pubsub.ValidatorEx {
	return func(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		env, err := readEnvelope(msg.GetData())
		if err != nil {
			return pubsub.ValidationReject
		}
		from := msg.GetFrom()
		key, ok := m.Key(env.epoch)
		if !ok {
			if from == m.Host() || m.IsMember(from) {
				m.Missing(env.epoch)
			}
			return pubsub.ValidationIgnore
		}
		tm, err := openEnvelope(sessionID, key, env)
		if err != nil {
			return pubsub.ValidationReject
		}
		switch {
		case tm.Roster != nil:
			if from != m.Host() || tm.Roster.Session != sessionID {
				return pubsub.ValidationReject
			}
		case tm.Heartbeat != nil:
			if from != m.Host() || tm.Heartbeat.Session != sessionID {
				return pubsub.ValidationReject
			}
		default:
			d := tm.Data
			if CheckData(sessionID, d) != nil || d.Epoch != env.epoch {
				return pubsub.ValidationReject
			}
			if from != d.Sender && from != m.Host() {
				return pubsub.ValidationReject
			}
			if !m.IsMember(d.Sender) {
				// Perhaps a member whose joining this node has not heard of
				// yet: let it go, but do not pass it on.
				return pubsub.ValidationIgnore
			}
			// Checked even when its sender published it (gossipsub's own
			// signature vouches for that): the host passes messages on, and
			// one with a bad signature would make members reject the host.
			if Verify(d) != nil {
				return pubsub.ValidationReject
			}
		}
		msg.ValidatorData = &tm
		return pubsub.ValidationAccept
	}
}
