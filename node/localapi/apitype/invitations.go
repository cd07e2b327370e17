package apitype

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// InviteRequest is the body of POST /v1/invitations.
type InviteRequest struct {
	// Peers are contacts, people near, peer IDs or /p2p/ multiaddrs.
	Peers []string `json:"peers"`
	AppID string   `json:"application_id"`
	// Message is at most 255 characters, Data at most 16 KiB.
	Message string `json:"message,omitempty"`
	Data    []byte `json:"data,omitempty"`
	// Timeout is a Go duration (default 5m, at most 24h).
	Timeout   string `json:"timeout,omitempty"`
	SessionID string `json:"session_id,omitempty"`
}

// Direction says who sent an invitation.
type Direction string

// Directions.
const (
	Sent     Direction = "sent"
	Received Direction = "received"
)

// InvitationState is where an invitation stands.
type InvitationState string

// Invitation states. A sent invitation is pending until the invitee has
// it, then delivered; a received one is pending until answered. The other
// states are final.
const (
	InvitationPending   InvitationState = "pending"
	InvitationDelivered InvitationState = "delivered"
	InvitationAccepted  InvitationState = "accepted"
	InvitationDeclined  InvitationState = "declined"
	InvitationExpired   InvitationState = "expired"
	InvitationCancelled InvitationState = "cancelled"
	InvitationError     InvitationState = "error"
)

// Answered reports whether the state is final.
func (s InvitationState) Answered() bool {
	return s != InvitationPending && s != InvitationDelivered
}

// Invitation is one invitation, sent or received (Windows'
// PEER_INVITATION and its answer). It is the payload of EventInvitation.
// Lists and events leave Data out; GET /v1/invitations/{id} has it.
type Invitation struct {
	ID        string    `json:"id"`
	AppID     string    `json:"application_id"`
	Message   string    `json:"message,omitempty"`
	Data      []byte    `json:"data,omitempty"`
	Sent      time.Time `json:"sent"`
	Expires   time.Time `json:"expires"`
	SessionID string    `json:"session_id,omitempty"`
	Direction Direction `json:"direction"`
	// Peer is the other party: the invitee of a sent invitation, the
	// inviter of a received one; PeerName names it for a person.
	Peer     peer.ID         `json:"peer"`
	PeerName string          `json:"peer_name"`
	State    InvitationState `json:"state"`
	// Reason explains an error or a decline: "application not registered",
	// "not accepting invitations", "rate limited", "invalid invitation",
	// "inbox full, try later" or "unreachable".
	Reason string `json:"reason,omitempty"`
	// Trusted: for a received invitation, the inviter is a trusted contact
	// (or endorsed by one); for a sent one, the invitee is a contact.
	Trusted bool `json:"trusted"`
	// Source is the remote address of the connection a received
	// invitation came over (a relay's for a relayed connection).
	Source string `json:"source,omitempty"`
	// Batch groups the invitations sent by one request.
	Batch string `json:"batch,omitempty"`
	// Person is set on a sent invitation that went to several devices of
	// one person (inviting a contact with several endpoints online): the
	// person's ID. The first accepted answers for the person and the
	// others are withdrawn (cancelled); the tally counts the person once.
	Person  peer.ID   `json:"person,omitempty"`
	Updated time.Time `json:"updated"`
	// Launched is set once the application was started for this accepted
	// invitation.
	Launched bool `json:"launched,omitempty"`
}

// Tally counts invitations by how they were answered.
type Tally struct {
	Total     int `json:"total"`
	Accepted  int `json:"accepted"`
	Declined  int `json:"declined"`
	NoAnswer  int `json:"no_answer"` // pending or delivered
	Expired   int `json:"expired"`
	Cancelled int `json:"cancelled"`
	Error     int `json:"error"`
}

// Done reports whether every invitation has its final answer.
func (t Tally) Done() bool { return t.NoAnswer == 0 }

// TallyOf tallies invitations as the daemon does.
func TallyOf(invs []Invitation) Tally {
	invs = byPerson(invs)
	t := Tally{Total: len(invs)}
	for _, inv := range invs {
		switch inv.State {
		case InvitationAccepted:
			t.Accepted++
		case InvitationDeclined:
			t.Declined++
		case InvitationExpired:
			t.Expired++
		case InvitationCancelled:
			t.Cancelled++
		case InvitationError:
			t.Error++
		default:
			t.NoAnswer++
		}
	}
	return t
}

// InvitationList is a list of invitations and their tally: the answer to
// POST /v1/invitations, GET /v1/invitations and
// POST /v1/invitations/cancel-unanswered.
type InvitationList struct {
	Batch       string       `json:"batch,omitempty"`
	Invitations []Invitation `json:"invitations"`
	Tally       Tally        `json:"tally"`
}

// InvitationDetail is one invitation with the card of its inviter (Windows'
// PEER_APP_LAUNCH_INFO for a received one): the answer to
// GET /v1/invitations/{id}.
type InvitationDetail struct {
	Invitation Invitation `json:"invitation"`
	// Inviter describes the inviter's card and the trust in it (received
	// invitations only).
	Inviter *CardView `json:"inviter,omitempty"`
	// InviterCard is the inviter's card (PEM).
	InviterCard string `json:"inviter_card,omitempty"`
	// Contact is the other party's contact entry, if a contact.
	Contact *Contact `json:"contact,omitempty"`
}

// Policy says whose invitations a node takes.
type Policy string

// Policies.
const (
	PolicyAnyone Policy = "anyone"
	// PolicyContacts takes invitations from trusted contacts, and peers a
	// contact endorsed, only.
	PolicyContacts Policy = "contacts"
	PolicyNobody   Policy = "nobody"
)

// PolicyBody is the body and answer of PUT /v1/invitations/policy, and the
// answer of GET /v1/invitations/policy.
type PolicyBody struct {
	Policy Policy `json:"policy"`
}

// BatchRequest names a batch of invitations: the body of
// POST /v1/invitations/cancel-unanswered.
type BatchRequest struct {
	Batch string `json:"batch"`
}

// byPerson merges the invitations of a batch to one person's devices into
// one, standing as the person answered: accepted if one was, else
// unanswered while one is, else declined if one was, else as the first.
func byPerson(invs []Invitation) []Invitation {
	rank := func(st InvitationState) int {
		switch st {
		case InvitationAccepted:
			return 4
		case InvitationDeclined:
			return 2
		case InvitationExpired, InvitationCancelled, InvitationError:
			return 1
		}
		return 3
	}
	out := make([]Invitation, 0, len(invs))
	at := map[[2]string]int{}
	for _, r := range invs {
		if r.Person == "" || r.Direction != Sent {
			out = append(out, r)
			continue
		}
		k := [2]string{r.Batch, string(r.Person)}
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, r)
			continue
		}
		if rank(r.State) > rank(out[i].State) {
			out[i].State = r.State
		}
	}
	return out
}
