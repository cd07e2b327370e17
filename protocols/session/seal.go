package session

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/chacha20poly1305"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/internal/gossip"
	"github.com/peercollab/peercollab/protocols/pb"
)

// topicBuckets are the sizes a topic message is padded to before it is
// sealed: a short chat line, a roster of a few dozen members, and so on up
// to the largest data message; beyond that, multiples of the largest.
var topicBuckets = []int{256, 1 << 10, 4 << 10, 16 << 10, MaxDataSize + 1<<10}

// bound is what the seal and the signature of a message cover.
func bound(d *Data) []byte {
	b := make([]byte, 0, 96+len(d.Session))
	b = append(b, "peercollab session data\x00"...)
	b = append(b, d.Session...)
	b = append(b, 0)
	b = append(b, d.Sender...)
	b = binary.BigEndian.AppendUint64(b, d.Seq)
	return binary.BigEndian.AppendUint32(b, d.Epoch)
}

// Seal makes a signed, sealed message: payload number seq of the sender
// whose key signs.
func Seal(sessionID string, sign func([]byte) ([]byte, error), sender peer.ID, seq uint64, key Key, payload []byte) (Data, error) {
	if len(payload) > MaxPayload {
		return Data{}, ErrTooLarge
	}
	d := Data{Session: sessionID, Sender: sender, Seq: seq, Epoch: key.Epoch}
	aead, err := chacha20poly1305.NewX(key.Secret[:])
	if err != nil {
		return Data{}, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(payload)+aead.Overhead())
	rand.Read(nonce)
	d.Sealed = aead.Seal(nonce, nonce, payload, bound(&d))
	if d.Signature, err = sign(signed(&d)); err != nil {
		return Data{}, err
	}
	return d, nil
}

// signed is what the sender signs: the bound fields and the sealed text.
func signed(d *Data) []byte { return append(bound(d), d.Sealed...) }

// Verify checks a message's signature against its sender's key.
func Verify(d *Data) error {
	sender, err := peer.IDFromBytes([]byte(d.Sender))
	if err != nil {
		return ErrBadSignature
	}
	pub, err := sender.ExtractPublicKey()
	if err != nil {
		return ErrBadSignature
	}
	ok, err := pub.Verify(signed(d), d.Signature)
	if err != nil || !ok {
		return ErrBadSignature
	}
	return nil
}

// Open returns a message's payload.
func Open(key Key, d *Data) ([]byte, error) {
	if key.Epoch != d.Epoch {
		return nil, ErrCannotOpen
	}
	aead, err := chacha20poly1305.NewX(key.Secret[:])
	if err != nil {
		return nil, err
	}
	if len(d.Sealed) < aead.NonceSize() {
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
func CheckData(sid string, d *Data) error {
	if d == nil || d.Session != sid || d.Seq == 0 || d.Seq > MaxSeq || len(d.Sealed) == 0 {
		return ErrMalformed
	}
	if _, err := peer.IDFromBytes([]byte(d.Sender)); err != nil {
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
func SealTopic(sessionID string, key Key, m TopicMessage) ([]byte, error) {
	plain, err := proto.Marshal(m.toPB())
	if err != nil {
		return nil, err
	}
	return SealEnvelope(sessionID, key, plain)
}

// SealEnvelope is SealTopic for a topic message already marshalled (or
// whatever bytes a peer holding the key chooses to seal: tests play such a
// peer with it).
func SealEnvelope(sessionID string, key Key, plain []byte) ([]byte, error) {
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

// envelope is an envelope read off the topic, not yet opened.
type envelope struct {
	epoch  uint32
	sealed []byte
}

// readEnvelope reads an envelope: an epoch and a sealed text.
func readEnvelope(b []byte) (envelope, error) {
	var env pb.SessionEnvelope
	if len(b) > MaxTopicSize || proto.Unmarshal(b, &env) != nil || env.GetEpoch() == 0 || len(env.GetSealed()) == 0 {
		return envelope{}, ErrMalformed
	}
	return envelope{env.GetEpoch(), env.GetSealed()}, nil
}

// OpenTopic returns the topic message an envelope (from SealTopic)
// carries.
func OpenTopic(sessionID string, key Key, b []byte) (TopicMessage, error) {
	env, err := readEnvelope(b)
	if err != nil {
		return TopicMessage{}, err
	}
	return openEnvelope(sessionID, key, env)
}

func openEnvelope(sessionID string, key Key, env envelope) (TopicMessage, error) {
	if key.Epoch != env.epoch {
		return TopicMessage{}, ErrCannotOpen
	}
	aead, err := chacha20poly1305.NewX(key.Secret[:])
	if err != nil {
		return TopicMessage{}, err
	}
	if len(env.sealed) < aead.NonceSize() {
		return TopicMessage{}, ErrCannotOpen
	}
	nonce, box := env.sealed[:aead.NonceSize()], env.sealed[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, box, envelopeAD(sessionID, env.epoch))
	if err != nil {
		return TopicMessage{}, ErrCannotOpen
	}
	if plain, err = gossip.Unpad(plain); err != nil {
		return TopicMessage{}, ErrMalformed
	}
	var tm pb.SessionTopicMessage
	if err := proto.Unmarshal(plain, &tm); err != nil {
		return TopicMessage{}, ErrMalformed
	}
	return topicFromPB(&tm)
}
