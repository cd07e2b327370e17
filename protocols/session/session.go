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
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/crypto/chacha20poly1305"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/internal/gossip"
	"github.com/peercollab/peercollab/protocols/internal/wire"
	"github.com/peercollab/peercollab/protocols/pb"
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

// topicBuckets are the sizes a topic message is padded to before it is
// sealed: a short chat line, a roster of a few dozen members, and so on up
// to the largest data message; beyond that, multiples of the largest.
var topicBuckets = []int{256, 1 << 10, 4 << 10, 16 << 10, MaxDataSize + 1<<10}

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
func ValidTag(s string) bool { return validID(s) }

// Errors.
var (
	ErrBadSignature = errors.New("session: message signature is invalid")
	ErrCannotOpen   = errors.New("session: message cannot be opened with this key")
	ErrTooLarge     = errors.New("session: message larger than 64 KiB")
	ErrMalformed    = errors.New("session: malformed message")
)

// Key is a session key of one epoch.
type Key struct {
	Epoch  uint32
	Secret [chacha20poly1305.KeySize]byte
}

// NewKey makes a random key for epoch.
func NewKey(epoch uint32) Key {
	k := Key{Epoch: epoch}
	rand.Read(k.Secret[:])
	return k
}

// KeyToPB and KeyFromPB convert keys.
func KeyToPB(k Key) *pb.SessionKey { return &pb.SessionKey{Epoch: k.Epoch, Key: k.Secret[:]} }

// KeyFromPB converts a wire key.
func KeyFromPB(m *pb.SessionKey) (Key, error) {
	if len(m.GetKey()) != chacha20poly1305.KeySize {
		return Key{}, errors.New("session: key of the wrong size")
	}
	k := Key{Epoch: m.GetEpoch()}
	copy(k.Secret[:], m.GetKey())
	return k, nil
}

// bound is what the seal and the signature of a message cover.
func bound(d *pb.SessionData) []byte {
	b := make([]byte, 0, 96+len(d.SessionId))
	b = append(b, "peercollab session data\x00"...)
	b = append(b, d.SessionId...)
	b = append(b, 0)
	b = append(b, d.Sender...)
	b = binary.BigEndian.AppendUint64(b, d.Seq)
	return binary.BigEndian.AppendUint32(b, d.Epoch)
}

// Seal makes a signed, sealed message: payload number seq of the sender
// whose key signs.
func Seal(sessionID string, sign func([]byte) ([]byte, error), sender peer.ID, seq uint64, key Key, payload []byte) (*pb.SessionData, error) {
	if len(payload) > MaxPayload {
		return nil, ErrTooLarge
	}
	d := &pb.SessionData{SessionId: sessionID, Sender: []byte(sender), Seq: seq, Epoch: key.Epoch}
	aead, err := chacha20poly1305.NewX(key.Secret[:])
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(payload)+aead.Overhead())
	rand.Read(nonce)
	d.Sealed = aead.Seal(nonce, nonce, payload, bound(d))
	if d.Signature, err = sign(signed(d)); err != nil {
		return nil, err
	}
	return d, nil
}

// signed is what the sender signs: the bound fields and the sealed text.
func signed(d *pb.SessionData) []byte { return append(bound(d), d.Sealed...) }

// Verify checks a message's signature against its sender's key.
func Verify(d *pb.SessionData) error {
	sender, err := peer.IDFromBytes(d.GetSender())
	if err != nil {
		return ErrBadSignature
	}
	pub, err := sender.ExtractPublicKey()
	if err != nil {
		return ErrBadSignature
	}
	ok, err := pub.Verify(signed(d), d.GetSignature())
	if err != nil || !ok {
		return ErrBadSignature
	}
	return nil
}

// Open returns a message's payload.
func Open(key Key, d *pb.SessionData) ([]byte, error) {
	if key.Epoch != d.GetEpoch() {
		return nil, ErrCannotOpen
	}
	aead, err := chacha20poly1305.NewX(key.Secret[:])
	if err != nil {
		return nil, err
	}
	if len(d.GetSealed()) < aead.NonceSize() {
		return nil, ErrCannotOpen
	}
	nonce, box := d.Sealed[:aead.NonceSize()], d.Sealed[aead.NonceSize():]
	out, err := aead.Open(nil, nonce, box, bound(d))
	if err != nil {
		return nil, ErrCannotOpen
	}
	return out, nil
}

// CheckData reports whether d is a well-formed message of session sid: its
// sender a peer ID, its number within 1..MaxSeq, its sealed text there. It
// does not check the signature (see Verify).
func CheckData(sid string, d *pb.SessionData) error {
	if d == nil || d.GetSessionId() != sid || d.GetSeq() == 0 || d.GetSeq() > MaxSeq || len(d.GetSealed()) == 0 {
		return ErrMalformed
	}
	if _, err := peer.IDFromBytes(d.GetSender()); err != nil {
		return ErrMalformed
	}
	return nil
}

// envelopeAD is what an envelope's seal is bound to.
func envelopeAD(sessionID string, epoch uint32) []byte {
	b := make([]byte, 0, 64)
	b = append(b, "peercollab session topic\x00"...)
	b = append(b, sessionID...)
	return binary.BigEndian.AppendUint32(b, epoch)
}

// SealTopic makes the envelope that carries m on session sessionID's topic,
// sealed with key, and returns it marshalled.
func SealTopic(sessionID string, key Key, m *pb.SessionTopicMessage) ([]byte, error) {
	plain, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key.Secret[:])
	if err != nil {
		return nil, err
	}
	plain = gossip.Pad(plain, topicBuckets)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	rand.Read(nonce)
	env := &pb.SessionEnvelope{Epoch: key.Epoch, Sealed: aead.Seal(nonce, nonce, plain, envelopeAD(sessionID, key.Epoch))}
	return proto.Marshal(env)
}

// OpenTopic returns the topic message an envelope carries.
func OpenTopic(sessionID string, key Key, env *pb.SessionEnvelope) (*pb.SessionTopicMessage, error) {
	if key.Epoch != env.GetEpoch() {
		return nil, ErrCannotOpen
	}
	aead, err := chacha20poly1305.NewX(key.Secret[:])
	if err != nil {
		return nil, err
	}
	if len(env.GetSealed()) < aead.NonceSize() {
		return nil, ErrCannotOpen
	}
	nonce, box := env.Sealed[:aead.NonceSize()], env.Sealed[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, box, envelopeAD(sessionID, env.GetEpoch()))
	if err != nil {
		return nil, ErrCannotOpen
	}
	if plain, err = gossip.Unpad(plain); err != nil {
		return nil, ErrMalformed
	}
	var tm pb.SessionTopicMessage
	if err := proto.Unmarshal(plain, &tm); err != nil {
		return nil, ErrMalformed
	}
	return &tm, nil
}

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
// host passed on). An envelope of an epoch whose key this node lacks is
// ignored (Missing is told when the host or a member sent it).
func Validator(sessionID string, m Membership) pubsub.ValidatorEx {
	return func(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if len(msg.GetData()) > MaxTopicSize {
			return pubsub.ValidationReject
		}
		var env pb.SessionEnvelope
		if err := proto.Unmarshal(msg.GetData(), &env); err != nil || env.GetEpoch() == 0 || len(env.GetSealed()) == 0 {
			return pubsub.ValidationReject
		}
		from := msg.GetFrom()
		key, ok := m.Key(env.GetEpoch())
		if !ok {
			if from == m.Host() || m.IsMember(from) {
				m.Missing(env.GetEpoch())
			}
			return pubsub.ValidationIgnore
		}
		tm, err := OpenTopic(sessionID, key, &env)
		if err != nil {
			return pubsub.ValidationReject
		}
		switch x := tm.GetMsg().(type) {
		case *pb.SessionTopicMessage_Roster:
			if from != m.Host() || x.Roster.GetSessionId() != sessionID {
				return pubsub.ValidationReject
			}
		case *pb.SessionTopicMessage_Heartbeat:
			if from != m.Host() || x.Heartbeat.GetSessionId() != sessionID {
				return pubsub.ValidationReject
			}
		case *pb.SessionTopicMessage_Data:
			if CheckData(sessionID, x.Data) != nil || x.Data.GetEpoch() != env.GetEpoch() {
				return pubsub.ValidationReject
			}
			sender := peer.ID(x.Data.GetSender())
			if from != sender && from != m.Host() {
				return pubsub.ValidationReject
			}
			if !m.IsMember(sender) {
				// Perhaps a member whose joining this node has not heard of
				// yet: let it go, but do not pass it on.
				return pubsub.ValidationIgnore
			}
			// Checked even when its sender published it (gossipsub's own
			// signature vouches for that): the host passes messages on, and
			// one with a bad signature would make members reject the host.
			if Verify(x.Data) != nil {
				return pubsub.ValidationReject
			}
		default:
			return pubsub.ValidationReject
		}
		msg.ValidatorData = tm
		return pubsub.ValidationAccept
	}
}

// Handler answers the stream protocol's requests; each method runs on the
// goroutine of its stream. from is the authenticated requester.
type Handler interface {
	Join(from peer.ID, session, invitationID string) *pb.SessionResponse
	Fetch(from peer.ID, session string, sender peer.ID, first, last uint64) *pb.SessionResponse
	Post(from peer.ID, session string, d *pb.SessionData) *pb.SessionResponse
	Leave(from peer.ID, session string) *pb.SessionResponse
	HostRequest(from peer.ID, app, message string) *pb.SessionResponse
	// Deliver is given a topic message the host sent directly.
	Deliver(from peer.ID, session string, m *pb.SessionTopicMessage) *pb.SessionResponse
}

// Service answers session requests. Close removes its handler.
type Service struct {
	h    host.Host
	once sync.Once
}

// Serve registers the stream protocol's handler on h.
func Serve(h host.Host, handler Handler) *Service {
	h.SetStreamHandler(ID, wire.Handler(MaxRequestSize, Timeout, func() *pb.SessionRequest { return new(pb.SessionRequest) },
		func(_ context.Context, from peer.ID, r *pb.SessionRequest) (*pb.SessionResponse, error) {
			return dispatch(handler, from, r), nil
		}))
	return &Service{h: h}
}

func invalid(detail string) *pb.SessionResponse {
	return &pb.SessionResponse{Status: pb.SessionResponse_INVALID, Detail: detail}
}

func dispatch(h Handler, from peer.ID, r *pb.SessionRequest) *pb.SessionResponse {
	sid := r.GetSessionId()
	if _, ok := r.GetMsg().(*pb.SessionRequest_HostRequest); !ok && !validID(sid) {
		return invalid("malformed session ID")
	}
	switch m := r.GetMsg().(type) {
	case *pb.SessionRequest_Join:
		return h.Join(from, sid, m.Join.GetInvitationId())
	case *pb.SessionRequest_Fetch:
		sender, err := peer.IDFromBytes(m.Fetch.GetSender())
		first, last := m.Fetch.GetFrom(), m.Fetch.GetTo()
		if err != nil || first == 0 || last < first || first > MaxSeq {
			return invalid("malformed fetch")
		}
		return h.Fetch(from, sid, sender, first, min(last, first+MaxFetch-1))
	case *pb.SessionRequest_Post:
		d := m.Post.GetData()
		if CheckData(sid, d) != nil || Verify(d) != nil {
			return invalid("malformed or forged post")
		}
		return h.Post(from, sid, d)
	case *pb.SessionRequest_Leave:
		return h.Leave(from, sid)
	case *pb.SessionRequest_HostRequest:
		return h.HostRequest(from, m.HostRequest.GetApplicationId(), m.HostRequest.GetMessage())
	case *pb.SessionRequest_Deliver:
		tm := m.Deliver.GetMessage()
		if tm == nil {
			return invalid("empty delivery")
		}
		if d := tm.GetData(); d != nil && (CheckData(sid, d) != nil || Verify(d) != nil) {
			return invalid("malformed or forged message")
		}
		return h.Deliver(from, sid, tm)
	}
	return invalid("unknown request")
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Close removes the handler. It is idempotent.
func (s *Service) Close() error {
	s.once.Do(func() { s.h.RemoveStreamHandler(ID) })
	return nil
}

// Request sends a request to p and returns its response.
func Request(ctx context.Context, h host.Host, p peer.ID, r *pb.SessionRequest) (*pb.SessionResponse, error) {
	var resp pb.SessionResponse
	if err := wire.Exchange(ctx, h, p, ID, r, &resp, MaxResponseSize, Timeout); err != nil {
		return nil, err
	}
	return &resp, nil
}

// StatusError is a response status other than OK, as an error.
type StatusError struct {
	Status pb.SessionResponse_Status
	Detail string
}

func (e *StatusError) Error() string {
	msg := map[pb.SessionResponse_Status]string{
		pb.SessionResponse_UNKNOWN:    "the host knows no such session",
		pb.SessionResponse_NOT_MEMBER: "you are not a member of this session",
		pb.SessionResponse_ENDED:      "the session has ended",
		pb.SessionResponse_INVALID:    "the peer refused the request as malformed",
		pb.SessionResponse_PENDING:    "the peer will decide later",
		pb.SessionResponse_DECLINED:   "the peer declined",
	}[e.Status]
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return "session: " + msg
}

// Check returns a response's status as an error, or nil for OK.
func Check(r *pb.SessionResponse) error {
	if r.GetStatus() == pb.SessionResponse_OK {
		return nil
	}
	return &StatusError{r.GetStatus(), r.GetDetail()}
}

// RosterToPB and RosterFromPB convert rosters; members are peer IDs.
func RosterToPB(session, app string, host peer.ID, state pb.SessionRoster_State, version uint64, epoch uint32, members []peer.ID) *pb.SessionRoster {
	m := &pb.SessionRoster{SessionId: session, ApplicationId: app, Host: []byte(host), State: state, Version: version, Epoch: epoch}
	for _, p := range members {
		m.Members = append(m.Members, []byte(p))
	}
	return m
}

// Members decodes a roster's members.
func Members(r *pb.SessionRoster) ([]peer.ID, error) {
	out := make([]peer.ID, 0, len(r.GetMembers()))
	for _, b := range r.GetMembers() {
		p, err := peer.IDFromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("session: roster member: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}
