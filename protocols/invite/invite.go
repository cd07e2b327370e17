// Package invite is the invitation protocol: how a node invites another to
// an application, and how the answers come back.
//
// Three requests travel, each on a short stream of its own that the
// receiver acknowledges with an InviteAck: an Invitation (inviter to
// invitee), a Response (invitee to inviter: accepted, declined, expired or
// error with a reason), and a Cancel (inviter to invitee, while the
// invitation is unanswered). Because every step is its own request and
// acknowledgement, both ends can keep invitations durably and resend a step
// whose acknowledgement they never got, across dropped connections and
// restarts; receivers treat a repeated step as acknowledged. Streams are
// allowed on limited (relayed) connections.
//
// An Invitation carries the inviter's contact card; the receiver checks that
// the card belongs to the peer that sent it (authenticated by the libp2p
// handshake). A Response or Cancel from a peer that is not party to the
// invitation is refused with NotParty. An invitation that the receiver
// answers at once (its policy declines it, the application is not
// registered) gets its Response inside the acknowledgement.
package invite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"
	"unicode/utf8"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/internal/wire"
	"github.com/peercollab/peercollab/protocols/pb"
)

var log = logging.Logger("peercollab/invite")

// ID is the protocol ID.
const ID protocol.ID = "/peercollab/invite/1.0.0"

// Limits (Windows' PEER_INVITATION limits) and timings.
const (
	// MaxMessage is the longest invitation message, in characters.
	MaxMessage = 255
	// MaxData is the largest invitation data, in bytes.
	MaxData = 16 << 10
	// MaxRequestSize caps a request on the wire: data, card and the rest.
	MaxRequestSize = MaxData + contacts.MaxCardSize + 4<<10
	// maxAckSize caps an acknowledgement.
	maxAckSize = 1 << 10
	// DefaultExpiry is how long an invitation waits for an answer.
	DefaultExpiry = 5 * time.Minute
	// MaxExpiry is the longest an invitation may wait.
	MaxExpiry = 24 * time.Hour
	// Timeout bounds one request and its acknowledgement.
	Timeout = 10 * time.Second
	// clockSkew is how far the peers' clocks may disagree.
	clockSkew = time.Minute
)

// Errors about invitations and acknowledgements.
var (
	ErrMessageTooLong = errors.New("invite: message longer than 255 characters")
	ErrDataTooLarge   = errors.New("invite: data larger than 16 KiB")
	ErrBadID          = errors.New("invite: malformed invitation ID")
	ErrBadExpiry      = errors.New("invite: expiry is in the past or more than 24 hours ahead")
	ErrWrongInviter   = errors.New("invite: the invitation's card belongs to another peer than its sender")
	ErrUnknown        = errors.New("invite: the peer knows no such invitation")
	ErrNotParty       = errors.New("invite: the peer says you are not party to this invitation")
	ErrAnswered       = errors.New("invite: the invitation was answered, cancelled or expired already")
	ErrInvalid        = errors.New("invite: the peer refused the request as malformed")
)

// NewID returns a fresh invitation ID.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// CheckID reports whether id is a well-formed invitation ID.
func CheckID(id string) error {
	if !idPattern.MatchString(id) {
		return ErrBadID
	}
	return nil
}

// Invitation is an invitation to an application (Windows' PEER_INVITATION,
// plus what travels with it).
type Invitation struct {
	ID        string    `json:"id"`
	AppID     string    `json:"application_id"`
	Message   string    `json:"message,omitempty"`
	Data      []byte    `json:"data,omitempty"`
	Sent      time.Time `json:"sent"`
	Expires   time.Time `json:"expires"`
	SessionID string    `json:"session_id,omitempty"`
	// InviterCard is the inviter's contact card (PEM).
	InviterCard []byte `json:"-"`
}

// Check reports whether the invitation is within limits. It does not look
// at the expiry; see CheckExpiry.
func (i *Invitation) Check() error {
	if err := CheckID(i.ID); err != nil {
		return err
	}
	if err := endpoint.CheckID(i.AppID); err != nil {
		return err
	}
	if utf8.RuneCountInString(i.Message) > MaxMessage || !utf8.ValidString(i.Message) {
		return ErrMessageTooLong
	}
	if len(i.Data) > MaxData {
		return ErrDataTooLarge
	}
	if i.SessionID != "" && CheckID(i.SessionID) != nil {
		return fmt.Errorf("%w: session ID", ErrBadID)
	}
	return nil
}

// CheckExpiry reports whether the expiry is ahead of now, within MaxExpiry.
func (i *Invitation) CheckExpiry(now time.Time) error {
	if !i.Expires.After(now) || i.Expires.After(now.Add(MaxExpiry+clockSkew)) {
		return ErrBadExpiry
	}
	return nil
}

func (i *Invitation) toPB() *pb.Invitation {
	return &pb.Invitation{Id: i.ID, ApplicationId: i.AppID, Message: i.Message, Data: i.Data,
		ExpiresUnixMs: i.Expires.UnixMilli(), SentUnixMs: i.Sent.UnixMilli(), InviterCard: i.InviterCard, SessionId: i.SessionID}
}

func invitationFromPB(m *pb.Invitation) Invitation {
	return Invitation{ID: m.GetId(), AppID: m.GetApplicationId(), Message: m.GetMessage(), Data: m.GetData(),
		Expires: time.UnixMilli(m.GetExpiresUnixMs()).UTC(), Sent: time.UnixMilli(m.GetSentUnixMs()).UTC(),
		InviterCard: m.GetInviterCard(), SessionID: m.GetSessionId()}
}

// Action is the kind of a response.
type Action int

// Actions, with Windows' values.
const (
	Declined Action = iota
	Accepted
	Expired
	Error
)

func (a Action) String() string {
	if a < 0 || a > Error {
		return fmt.Sprintf("Action(%d)", int(a))
	}
	return [...]string{"declined", "accepted", "expired", "error"}[a]
}

// MarshalText implements encoding.TextMarshaler.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Action) UnmarshalText(b []byte) error {
	for i := Declined; i <= Error; i++ {
		if i.String() == string(b) {
			*a = i
			return nil
		}
	}
	return fmt.Errorf("invite: unknown action %q", b)
}

// Reason explains a response other than an acceptance.
type Reason int

// Reasons.
const (
	NoReason Reason = iota
	AppNotRegistered
	NotAccepting
	RateLimited
	Invalid
	// Unreachable is never sent: the inviter records it when it could not
	// deliver the invitation before it expired.
	Unreachable
)

func (r Reason) String() string {
	if r < 0 || r > Unreachable {
		return fmt.Sprintf("Reason(%d)", int(r))
	}
	return [...]string{"", "application not registered", "not accepting invitations", "rate limited", "invalid invitation", "unreachable"}[r]
}

// MarshalText implements encoding.TextMarshaler.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Reason) UnmarshalText(b []byte) error {
	for i := NoReason; i <= Unreachable; i++ {
		if i.String() == string(b) {
			*r = i
			return nil
		}
	}
	return fmt.Errorf("invite: unknown reason %q", b)
}

// Response answers an invitation.
type Response struct {
	InvitationID string
	Action       Action
	Reason       Reason
}

func (r Response) toPB() *pb.InvitationResponse {
	return &pb.InvitationResponse{InvitationId: r.InvitationID, Action: pb.InvitationResponse_Action(r.Action), Reason: pb.InvitationResponse_Reason(r.Reason)}
}

func responseFromPB(m *pb.InvitationResponse) Response {
	return Response{InvitationID: m.GetInvitationId(), Action: Action(m.GetAction()), Reason: Reason(m.GetReason())}
}

// AckStatus is a receiver's verdict on a request.
type AckStatus = pb.InviteAck_Status

// Ack statuses.
const (
	AckOK       = pb.InviteAck_OK
	AckUnknown  = pb.InviteAck_UNKNOWN
	AckNotParty = pb.InviteAck_NOT_PARTY
	AckAnswered = pb.InviteAck_ANSWERED
	AckInvalid  = pb.InviteAck_INVALID
)

// Ack is a receiver's acknowledgement.
type Ack struct {
	Status AckStatus
	// Response is set when an invitation was answered at once.
	Response *Response
}

// Err returns the error a non-OK acknowledgement means, or nil.
func (a Ack) Err() error {
	switch a.Status {
	case AckOK:
		return nil
	case AckUnknown:
		return ErrUnknown
	case AckNotParty:
		return ErrNotParty
	case AckAnswered:
		return ErrAnswered
	}
	return ErrInvalid
}

// Handler receives the requests of the protocol; every method runs on the
// goroutine of its stream and returns the acknowledgement to send. from is
// the authenticated sender.
type Handler interface {
	// Invited is given an invitation whose limits, expiry and card have
	// been checked (card is the inviter's, parsed).
	Invited(from peer.ID, inv Invitation, card *contacts.Card) Ack
	// Responded is given a response to an invitation.
	Responded(from peer.ID, r Response) Ack
	// Cancelled is given the cancellation of an invitation.
	Cancelled(from peer.ID, id string) Ack
}

// Service answers invitation requests. Close removes its handler.
type Service struct {
	h     host.Host
	once  sync.Once
	cards contacts.CardCache
}

// New registers the protocol's handler on h.
func New(h host.Host, handler Handler) *Service {
	s := &Service{h: h}
	h.SetStreamHandler(ID, wire.Handler(MaxRequestSize, Timeout, func() *pb.InviteRequest { return new(pb.InviteRequest) },
		func(_ context.Context, from peer.ID, m *pb.InviteRequest) (*pb.InviteAck, error) {
			ack := s.dispatch(handler, from, m, time.Now())
			out := &pb.InviteAck{Status: ack.Status}
			if ack.Response != nil {
				out.Response = ack.Response.toPB()
			}
			return out, nil
		}))
	return s
}

// Close removes the handler. It is idempotent.
func (s *Service) Close() error {
	s.once.Do(func() { s.h.RemoveStreamHandler(ID) })
	return nil
}

// dispatch checks a request and hands it to the handler.
func (s *Service) dispatch(h Handler, from peer.ID, m *pb.InviteRequest, now time.Time) Ack {
	switch msg := m.GetMsg().(type) {
	case *pb.InviteRequest_Invitation:
		inv := invitationFromPB(msg.Invitation)
		if err := inv.Check(); err != nil {
			log.Debugw("bad invitation", "peer", from, "error", err)
			return Ack{Status: AckInvalid}
		}
		card, err := s.cards.Parse(inv.InviterCard, now)
		if err != nil || card.PeerID() != from {
			log.Debugw("bad inviter card", "peer", from, "error", err)
			return Ack{Status: AckInvalid}
		}
		if err := inv.CheckExpiry(now); err != nil {
			return Ack{Status: AckAnswered, Response: &Response{InvitationID: inv.ID, Action: Expired}}
		}
		return h.Invited(from, inv, card)
	case *pb.InviteRequest_Response:
		r := responseFromPB(msg.Response)
		if CheckID(r.InvitationID) != nil || r.Action < Declined || r.Action > Error || r.Reason < NoReason || r.Reason >= Unreachable {
			return Ack{Status: AckInvalid}
		}
		return h.Responded(from, r)
	case *pb.InviteRequest_Cancel:
		id := msg.Cancel.GetInvitationId()
		if CheckID(id) != nil {
			return Ack{Status: AckInvalid}
		}
		return h.Cancelled(from, id)
	}
	return Ack{Status: AckInvalid}
}

func send(ctx context.Context, h host.Host, p peer.ID, req *pb.InviteRequest) (Ack, error) {
	var m pb.InviteAck
	if err := wire.Exchange(ctx, h, p, ID, req, &m, maxAckSize, Timeout); err != nil {
		return Ack{}, err
	}
	ack := Ack{Status: m.GetStatus()}
	if m.Response != nil {
		r := responseFromPB(m.Response)
		ack.Response = &r
	}
	return ack, nil
}

// Invite sends an invitation to p.
func Invite(ctx context.Context, h host.Host, p peer.ID, inv Invitation) (Ack, error) {
	return send(ctx, h, p, &pb.InviteRequest{Msg: &pb.InviteRequest_Invitation{Invitation: inv.toPB()}})
}

// Respond sends the response to an invitation to its inviter p.
func Respond(ctx context.Context, h host.Host, p peer.ID, r Response) (Ack, error) {
	return send(ctx, h, p, &pb.InviteRequest{Msg: &pb.InviteRequest_Response{Response: r.toPB()}})
}

// Cancel withdraws invitation id sent to p.
func Cancel(ctx context.Context, h host.Host, p peer.ID, id string) (Ack, error) {
	return send(ctx, h, p, &pb.InviteRequest{Msg: &pb.InviteRequest_Cancel{Cancel: &pb.InvitationCancel{InvitationId: id}}})
}
