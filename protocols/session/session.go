// Package session is the wire side of collaboration sessions: the session
// topic, its messages and their validation, the sealing and signing of
// application messages, and the session stream protocol.
//
// Each session has a gossipsub topic, Topic(tag), named by a random topic
// tag that the host makes with the session and hands to each member as it
// joins: the session ID, which every invitee learns, does not name it. Its
// host publishes the roster (who the members are, at which version and key
// epoch) and heartbeats (how far each sender got); members publish their
// application messages as SessionData: numbered per sender, sealed with the
// session key of an epoch (XChaCha20-Poly1305, bound to session, sender,
// number and epoch), and signed with the sender's key, so that the host can
// pass a message on for a member that cannot reach the topic and every
// member can still check who wrote it. Whatever goes on the topic (roster,
// heartbeat, data) travels in a SessionEnvelope: padded to a size bucket and
// sealed again with the session key of the epoch, so that only a holder of
// the key sees the members, the application or who wrote a message.
// Validator opens envelopes and accepts a roster or heartbeat only from the
// host, and data only from a current member.
//
// The stream protocol, ID, carries short requests to the host (or, for a
// fetch, to any member): Join (roster, keys and topic tag, for a member that
// accepted its invitation, restarted, or saw a new epoch), Fetch (a sender's
// messages in a range: gap repair), Post (a message for the host to
// publish), Leave, HostRequest (asking a peer to host a session and invite
// you), and Deliver (the host hands a topic message to a member that is not
// on the topic's mesh, such as one reached only over a limited relay, where
// gossipsub opens no stream). Streams are allowed on limited (relayed)
// connections. A node answers a peer that has no part in a session (never
// invited to it, or not a member where a member is asked) UNKNOWN, as if it
// had no such session, with nothing else in the answer.
//
// Both ends speak in this package's types, never the wire's: New registers
// a Handler whose methods take and return Data, Roster, TopicMessage and
// Joined, and the client functions (Join, Fetch, Post, Leave, Deliver,
// RequestHost) return them. A refusal travels as a status and comes back as
// a *StatusError that unwraps to one of the sentinels ErrUnknown,
// ErrNotMember, ErrEnded, ErrInvalid, ErrPending or ErrDeclined. The client
// reads every answer as coming from a peer that may be hostile: a join
// answer that does not hold together, or an unknown status, is ErrBadAnswer;
// a fetch answer keeps only the well-formed, signed messages of the sender
// and range asked for.
//
// # What a peer outside the session can observe
//
// No node lets gossipsub pass a session message on: nodes relay the topic
// rather than subscribe, and their validator hands what it accepts to the
// node and tells gossipsub to ignore it. Each node sends its own messages
// (see Publish) to the host and the members it knows, and to no one else;
// the host passes every member's message on to all members, and hands
// topic messages over the stream protocol (Deliver) to members it cannot
// reach on the topic. A node's pubsub peer filter keeps everyone but the
// host and the members it knows out of the topic's mesh, and answers no
// request (IWANT) for the topic's messages from anyone else. So a peer that
// is not a member, whichever pubsub protocol it speaks and whatever topics
// it subscribes to, receives no session message, and a stream request gets
// it UNKNOWN. What such an outsider can still observe:
//
//   - Gossipsub announces a node's topics to every peer connected to it
//     that speaks pubsub: an outsider connected to the host or a member sees
//     that it is on a session topic (a random name, which it cannot link to
//     the session ID), that the peers it is connected to share that topic,
//     and when they join and leave it.
//   - Gossipsub sends gossip (IHAVE) about a topic to some of the peers that
//     announced it, filter or not, every heartbeat. Its message IDs name the
//     publisher (which, since no node passes on another's messages, is the
//     peer that gossips) and a sequence number: an outsider subscribed to
//     the topic learns how many messages the peer it is connected to
//     published there in the last few seconds; never their content, size,
//     author or the members.
//   - Who is connected to whom, and the timing and volume of the traffic on
//     those connections (topic messages, Deliver, Post, Fetch), for whoever
//     sees the connections.
//
// Members see, besides the content: gossipsub's From, sequence number and
// signature (the publisher of each envelope: the host, or the member that
// wrote it), the key epoch and the padded size of each envelope. A removed
// member keeps the keys of the epochs it held and can open what was sealed
// with them (messages in flight when it was removed); it is sent nothing
// more by nodes that know of the removal, and what a node that does not
// know yet sends it is sealed with the new epoch's key: it sees only that
// envelope's publisher, epoch and size.
package session

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// ID is the stream protocol's ID.
const ID protocol.ID = "/peercollab/session/1.0.0"

// Limits and timings.
const (
	// MaxPayload is the largest application message, in bytes.
	MaxPayload = 64 << 10
	// MaxDataSize caps a SessionData on the wire.
	MaxDataSize = MaxPayload + 1<<10
	// MaxRequestSize caps a request.
	MaxRequestSize = MaxDataSize + 1<<10
	// MaxFetch is the most messages one fetch returns.
	MaxFetch = 256
	// MaxResponseSize caps a response.
	MaxResponseSize = MaxFetch*MaxDataSize/8 + 64<<10
	// MaxTopicSize caps an envelope on the topic (gossipsub's own cap is
	// 1 MiB).
	MaxTopicSize = 1<<20 - 4<<10
	// MaxSeq is the highest sequence number a message may carry.
	MaxSeq = 1 << 62
	// Timeout bounds a request and its response.
	Timeout = 10 * time.Second
	// topicPrefix starts every session topic.
	topicPrefix = "/peercollab/session/1/"
)

// Errors of messages.
var (
	ErrBadSignature = errors.New("session: message signature is invalid")
	ErrCannotOpen   = errors.New("session: message cannot be opened with this key")
	ErrTooLarge     = errors.New("session: message larger than 64 KiB")
	ErrMalformed    = errors.New("session: malformed message")
)

// Topic is the name of the topic of a session whose topic tag is tag.
func Topic(tag string) string { return topicPrefix + tag }

// TopicTag returns the tag of a session topic's name.
func TopicTag(topic string) (string, bool) {
	tag, ok := strings.CutPrefix(topic, topicPrefix)
	return tag, ok && ValidTag(tag)
}

// NewTopicTag makes a random topic tag: 128 bits, hex.
func NewTopicTag() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidTag reports whether s is a well-formed session ID or topic tag: 32
// lowercase hex digits.
func ValidTag(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
