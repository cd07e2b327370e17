package apitype

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// SessionState is where a session stands.
type SessionState string

// Session states.
const (
	SessionForming SessionState = "forming"
	SessionRunning SessionState = "running"
	SessionEnded   SessionState = "ended"
)

// Standing is where a peer stands in a session. Invited peers have not
// answered; a member is an accepted, current member; the rest are final.
type Standing string

// Standings.
const (
	StandingInvited   Standing = "invited"
	StandingMember    Standing = "member"
	StandingDeclined  Standing = "declined"
	StandingExpired   Standing = "expired"
	StandingCancelled Standing = "cancelled"
	// StandingFailed: the invitation could not be delivered.
	StandingFailed  Standing = "failed"
	StandingRemoved Standing = "removed"
	StandingLeft    Standing = "left"
)

// Session is a session, hosted or joined, as this node knows it: the answer
// to the /v1/sessions calls and the payload of EventSession.
type Session struct {
	ID      string       `json:"id"`
	AppID   string       `json:"application_id"`
	Host    peer.ID      `json:"host"`
	Hosting bool         `json:"hosting"`
	State   SessionState `json:"state"`
	// Version numbers the roster's changes; Epoch the session key, which
	// changes when a member is removed.
	Version uint64    `json:"version"`
	Epoch   uint32    `json:"epoch"`
	Members []peer.ID `json:"members"`
	Joined  bool      `json:"joined"`
	// Me is this node's standing: member, removed, left; invited while it
	// has not joined yet.
	Me Standing `json:"me"`
	// Standing is every invited peer's standing, by peer ID (hosted
	// sessions only).
	Standing map[string]Standing `json:"standing,omitempty"`
	// Tally counts the session's invitations (hosted sessions only).
	Tally *Tally `json:"tally,omitempty"`
	// Sent is how many messages this node sent; Received how many it
	// delivered, its own included.
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	Error    string `json:"error,omitempty"`
}

// Message is an application message delivered in a session: the answer to
// POST /v1/sessions/{id}/send, an entry of GET /v1/sessions/{id}/messages,
// and the payload of EventMessage.
type Message struct {
	Session string  `json:"session"`
	Sender  peer.ID `json:"sender"`
	// Seq numbers the sender's messages in the session, from 1.
	Seq  uint64    `json:"seq"`
	Data []byte    `json:"data"`
	Time time.Time `json:"time"`
	// Index numbers the messages delivered in this session here, from 1,
	// for reading them back (?after=INDEX).
	Index uint64 `json:"index"`
}

// SessionCreateRequest is the body of POST /v1/sessions.
type SessionCreateRequest struct {
	AppID string `json:"application_id"`
}

// SessionInviteRequest is the body of POST /v1/sessions/{id}/invite.
type SessionInviteRequest struct {
	Peers   []string `json:"peers"`
	Message string   `json:"message,omitempty"`
	// Timeout is a Go duration (default 5m, at most 24h).
	Timeout string `json:"timeout,omitempty"`
}

// SessionInviteResponse is the answer to POST /v1/sessions/{id}/invite.
type SessionInviteResponse struct {
	Session     Session      `json:"session"`
	Invitations []Invitation `json:"invitations"`
}

// SessionSendRequest is the body of POST /v1/sessions/{id}/send.
type SessionSendRequest struct {
	Data []byte `json:"data"`
}

// PeerRequest names a peer: the body of POST /v1/sessions/{id}/remove.
type PeerRequest struct {
	Peer string `json:"peer"`
}

// HostRequestBody is the body of POST /v1/host-requests: ask a peer to
// host a session for an application and invite this node.
type HostRequestBody struct {
	Peer    string `json:"peer"`
	AppID   string `json:"application_id"`
	Message string `json:"message,omitempty"`
}

// HostRequestResult is the answer to POST /v1/host-requests: the peer
// accepted at once (Session set) or will decide later (Pending).
type HostRequestResult struct {
	Peer    peer.ID `json:"peer"`
	Pending bool    `json:"pending"`
	Session string  `json:"session,omitempty"`
}

// HostRequest is a request from a peer that this node host a session for
// an application and invite it: an entry of GET /v1/host-requests, the
// answer to POST /v1/host-requests/{id}/accept and .../decline, and the
// payload of EventHostRequest.
type HostRequest struct {
	ID       string    `json:"id"`
	From     peer.ID   `json:"from"`
	AppID    string    `json:"application_id"`
	Message  string    `json:"message,omitempty"`
	Received time.Time `json:"received"`
	// State is pending, accepted or declined.
	State string `json:"state"`
	// Session is the session created for an accepted request.
	Session string `json:"session,omitempty"`
}
