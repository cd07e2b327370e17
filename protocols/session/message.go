package session

import (
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
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

func keyToPB(k Key) *pb.SessionKey { return &pb.SessionKey{Epoch: k.Epoch, Key: k.Secret[:]} }

func keyFromPB(m *pb.SessionKey) (Key, error) {
	if len(m.GetKey()) != chacha20poly1305.KeySize {
		return Key{}, fmt.Errorf("%w: key of the wrong size", ErrMalformed)
	}
	k := Key{Epoch: m.GetEpoch()}
	copy(k.Secret[:], m.GetKey())
	return k, nil
}

// Data is one application message of a member: number Seq of its sender,
// sealed with the session key of Epoch and signed by the sender (see Seal).
// Its JSON form is what a node stores.
type Data struct {
	Session string  `json:"session"`
	Sender  peer.ID `json:"sender"`
	Seq     uint64  `json:"seq"`
	Epoch   uint32  `json:"epoch"`
	// Sealed is the nonce and the ciphertext.
	Sealed    []byte `json:"sealed"`
	Signature []byte `json:"signature"`
}

func (d *Data) toPB() *pb.SessionData {
	return &pb.SessionData{SessionId: d.Session, Sender: []byte(d.Sender), Seq: d.Seq, Epoch: d.Epoch, Sealed: d.Sealed, Signature: d.Signature}
}

// dataFromPB reads a message off the wire as it is; CheckData and Verify
// say whether it holds together.
func dataFromPB(m *pb.SessionData) Data {
	return Data{Session: m.GetSessionId(), Sender: peer.ID(m.GetSender()), Seq: m.GetSeq(), Epoch: m.GetEpoch(),
		Sealed: m.GetSealed(), Signature: m.GetSignature()}
}

// RosterState is the stage of a session as its roster tells it.
type RosterState int

// Roster states, with the wire's numbers.
const (
	Forming RosterState = iota
	Running
	Ended
)

// Roster is the host's account of a session at one version.
type Roster struct {
	Session string
	App     string
	Host    peer.ID
	State   RosterState
	Version uint64
	// Epoch numbers the session key.
	Epoch uint32
	// Members are the current members, the host first.
	Members []peer.ID
}

// Valid reports whether r is a roster of session id hosted by host: a
// version, an epoch and a known state, a well-formed application ID, the
// host first among distinct members.
func (r *Roster) Valid(id string, host peer.ID) bool {
	if r.Session != id || r.Host != host || r.Version == 0 || r.Epoch == 0 || r.State < Forming || r.State > Ended ||
		endpoint.CheckID(r.App) != nil || len(r.Members) == 0 || r.Members[0] != host {
		return false
	}
	seen := make(map[peer.ID]bool, len(r.Members))
	for _, p := range r.Members {
		if seen[p] {
			return false
		}
		seen[p] = true
	}
	return true
}

func (r *Roster) toPB() *pb.SessionRoster {
	m := &pb.SessionRoster{SessionId: r.Session, ApplicationId: r.App, Host: []byte(r.Host), State: pb.SessionRoster_State(r.State),
		Version: r.Version, Epoch: r.Epoch}
	for _, p := range r.Members {
		m.Members = append(m.Members, []byte(p))
	}
	return m
}

// rosterFromPB reads a roster; its members must be peer IDs (Valid checks
// the rest).
func rosterFromPB(m *pb.SessionRoster) (Roster, error) {
	r := Roster{Session: m.GetSessionId(), App: m.GetApplicationId(), Host: peer.ID(m.GetHost()), State: RosterState(m.GetState()),
		Version: m.GetVersion(), Epoch: m.GetEpoch(), Members: make([]peer.ID, 0, len(m.GetMembers()))}
	for _, b := range m.GetMembers() {
		p, err := peer.IDFromBytes(b)
		if err != nil {
			return Roster{}, fmt.Errorf("%w: roster member: %v", ErrMalformed, err)
		}
		r.Members = append(r.Members, p)
	}
	return r, nil
}

// Heartbeat tells the members how far each sender got, as far as the host
// knows, so that a lost last message is noticed.
type Heartbeat struct {
	Session string
	// Version is the roster version.
	Version uint64
	// Highest is each sender's highest sequence number.
	Highest map[peer.ID]uint64
}

func (h *Heartbeat) toPB() *pb.SessionHeartbeat {
	m := &pb.SessionHeartbeat{SessionId: h.Session, Version: h.Version, Highest: make(map[string]uint64, len(h.Highest))}
	for p, seq := range h.Highest {
		m.Highest[p.String()] = seq
	}
	return m
}

// heartbeatFromPB reads a heartbeat; entries that name no peer, or a number
// beyond MaxSeq, are left out.
func heartbeatFromPB(m *pb.SessionHeartbeat) Heartbeat {
	h := Heartbeat{Session: m.GetSessionId(), Version: m.GetVersion(), Highest: make(map[peer.ID]uint64, len(m.GetHighest()))}
	for id, seq := range m.GetHighest() {
		if p, err := peer.Decode(id); err == nil && seq <= MaxSeq {
			h.Highest[p] = seq
		}
	}
	return h
}

// TopicMessage is a message of a session's topic (inside an envelope on
// the topic itself, as it is in a Deliver): exactly one of its fields is
// set.
type TopicMessage struct {
	Roster    *Roster
	Heartbeat *Heartbeat
	Data      *Data
}

func (m *TopicMessage) toPB() *pb.SessionTopicMessage {
	switch {
	case m.Roster != nil:
		return &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Roster{Roster: m.Roster.toPB()}}
	case m.Heartbeat != nil:
		return &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Heartbeat{Heartbeat: m.Heartbeat.toPB()}}
	case m.Data != nil:
		return &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Data{Data: m.Data.toPB()}}
	}
	return &pb.SessionTopicMessage{}
}

// topicFromPB reads a topic message: ErrMalformed when it carries nothing
// or a roster whose members are not peer IDs.
func topicFromPB(m *pb.SessionTopicMessage) (TopicMessage, error) {
	switch x := m.GetMsg().(type) {
	case *pb.SessionTopicMessage_Roster:
		r, err := rosterFromPB(x.Roster)
		if err != nil {
			return TopicMessage{}, err
		}
		return TopicMessage{Roster: &r}, nil
	case *pb.SessionTopicMessage_Heartbeat:
		h := heartbeatFromPB(x.Heartbeat)
		return TopicMessage{Heartbeat: &h}, nil
	case *pb.SessionTopicMessage_Data:
		d := dataFromPB(x.Data)
		return TopicMessage{Data: &d}, nil
	}
	return TopicMessage{}, ErrMalformed
}

// Joined is the host's answer to a join: the roster, the keys of the
// current epoch and of the one before (for messages still in flight), and
// the tag of the session's topic.
type Joined struct {
	Roster   Roster
	Keys     []Key
	TopicTag string
}

// check reports whether j answers a join of session id at host: a valid
// roster of it, a valid topic tag, keys of epochs the roster knows.
func (j *Joined) check(id string, host peer.ID) bool {
	if !j.Roster.Valid(id, host) || !ValidTag(j.TopicTag) {
		return false
	}
	return !slices.ContainsFunc(j.Keys, func(k Key) bool { return k.Epoch == 0 || k.Epoch > j.Roster.Epoch })
}
