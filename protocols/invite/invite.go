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
// registered, the inviter sends too many, or the receiver keeps no more
// invitations from strangers: InboxFull) gets its Response inside the
// acknowledgement. The receiver's handler is told the remote address of
// the connection an invitation came over, so that it can limit by address.
//
// The client reads an acknowledgement as coming from a peer that may be
// hostile: an unknown status, reason or action, or a response about another
// invitation, is ErrBadAck, never a value the caller has to check.
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
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

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
	ErrBadAck         = errors.New("invite: the peer answered with a malformed acknowledgement")
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

// Reason explains a response other than an acceptance. The reasons up to
// InboxFull travel on the wire (pb.InvitationResponse_Reason, same
// numbers); the ones after it are the inviter's own and never sent. Records
// store a reason as its text, never its number, so local reasons may be
// renumbered when the wire gains one.
type Reason int

// Reasons.
const (
	NoReason Reason = iota
	AppNotRegistered
	NotAccepting
	RateLimited
	Invalid
	// InboxFull: the invitee keeps as many unanswered invitations from
	// strangers (or from the inviter's address or network) as it will;
	// the inviter may try again later.
	InboxFull

	// Unreachable is never sent: the inviter records it when it could not
	// deliver the invitation before it expired.
	Unreachable

	// maxWire is the last reason that travels.
	maxWire = InboxFull
)

var reasonText = [...]string{
	NoReason:         "",
	AppNotRegistered: "application not registered",
	NotAccepting:     "not accepting invitations",
	RateLimited:      "rate limited",
	Invalid:          "invalid invitation",
	InboxFull:        "inbox full, try later",
	Unreachable:      "unreachable",
}

func (r Reason) String() string {
	if r < 0 || int(r) >= len(reasonText) {
		return fmt.Sprintf("Reason(%d)", int(r))
	}
	return reasonText[r]
}

// Wire reports whether the reason travels on the wire.
func (r Reason) Wire() bool { return r >= NoReason && r <= maxWire }

// MarshalText implements encoding.TextMarshaler.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Reason) UnmarshalText(b []byte) error {
	for i, text := range reasonText {
		if text == string(b) {
			*r = Reason(i)
			return nil
		}
	}
	return fmt.Errorf("invite: unknown reason %q", b)
}

// reasonToPB and reasonFromPB map reasons to the wire and back: a reason
// that does not travel is sent as none; an unknown one read is not ok.
func reasonToPB(r Reason) pb.InvitationResponse_Reason {
	switch r {
	case AppNotRegistered:
		return pb.InvitationResponse_APP_NOT_REGISTERED
	case NotAccepting:
		return pb.InvitationResponse_NOT_ACCEPTING
	case RateLimited:
		return pb.InvitationResponse_RATE_LIMITED
	case Invalid:
		return pb.InvitationResponse_INVALID
	case InboxFull:
		return pb.InvitationResponse_INBOX_FULL
	}
	return pb.InvitationResponse_NONE
}

func reasonFromPB(r pb.InvitationResponse_Reason) (Reason, bool) {
	switch r {
	case pb.InvitationResponse_NONE:
		return NoReason, true
	case pb.InvitationResponse_APP_NOT_REGISTERED:
		return AppNotRegistered, true
	case pb.InvitationResponse_NOT_ACCEPTING:
		return NotAccepting, true
	case pb.InvitationResponse_RATE_LIMITED:
		return RateLimited, true
	case pb.InvitationResponse_INVALID:
		return Invalid, true
	case pb.InvitationResponse_INBOX_FULL:
		return InboxFull, true
	}
	return NoReason, false
}

// Response answers an invitation.
type Response struct {
	InvitationID string
	Action       Action
	Reason       Reason
}

func (r Response) toPB() *pb.InvitationResponse {
	return &pb.InvitationResponse{InvitationId: r.InvitationID, Action: pb.InvitationResponse_Action(r.Action), Reason: reasonToPB(r.Reason)}
}

// responseFromPB reads a response off the wire; ok is false when its
// action or reason is unknown or its invitation ID malformed.
func responseFromPB(m *pb.InvitationResponse) (r Response, ok bool) {
	reason, ok := reasonFromPB(m.GetReason())
	r = Response{InvitationID: m.GetInvitationId(), Action: Action(m.GetAction()), Reason: reason}
	return r, ok && CheckID(r.InvitationID) == nil && r.Action >= Declined && r.Action <= Error
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
	// been checked (card is the inviter's, parsed). addr is the remote
	// address of the connection it came over: for a relayed connection,
	// the relay's address with /p2p-circuit (what a receiver limits by
	// address is then the relay, shared by all who come through it).
	Invited(from peer.ID, addr ma.Multiaddr, inv Invitation, card *contacts.Card) Ack
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
	newReq := func() *pb.InviteRequest { return new(pb.InviteRequest) }
	h.SetStreamHandler(ID, func(st network.Stream) {
		// The handler is made per stream, so that it knows the address of
		// the stream's connection.
		addr := st.Conn().RemoteMultiaddr()
		wire.Handler(MaxRequestSize, Timeout, newReq, func(_ context.Context, from peer.ID, m *pb.InviteRequest) (*pb.InviteAck, error) {
			ack := s.dispatch(handler, from, addr, m, time.Now())
			out := &pb.InviteAck{Status: ack.Status}
			if ack.Response != nil {
				out.Response = ack.Response.toPB()
			}
			return out, nil
		})(st)
	})
	return s
}

// Close removes the handler. It is idempotent.
func (s *Service) Close() error {
	s.once.Do(func() { s.h.RemoveStreamHandler(ID) })
	return nil
}

// dispatch checks a request and hands it to the handler.
func (s *Service) dispatch(h Handler, from peer.ID, addr ma.Multiaddr, m *pb.InviteRequest, now time.Time) Ack {
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
		return h.Invited(from, addr, inv, card)
	case *pb.InviteRequest_Response:
		r, ok := responseFromPB(msg.Response)
		if !ok {
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

// send sends a request about invitation id and reads the acknowledgement.
func send(ctx context.Context, h host.Host, p peer.ID, id string, req *pb.InviteRequest) (Ack, error) {
	var m pb.InviteAck
	if err := wire.Exchange(ctx, h, p, ID, req, &m, maxAckSize, Timeout); err != nil {
		return Ack{}, err
	}
	_, invitation := req.GetMsg().(*pb.InviteRequest_Invitation)
	return ackFromPB(&m, id, invitation)
}

// ackFromPB reads an acknowledgement of a request about invitation id, as
// a peer that may be hostile sent it: an unknown status, or a response
// that is malformed or about another invitation, is ErrBadAck. A response
// means something only in the acknowledgement of an invitation (answered
// at once, or answered before); elsewhere it is dropped.
func ackFromPB(m *pb.InviteAck, id string, invitation bool) (Ack, error) {
	ack := Ack{Status: m.GetStatus()}
	switch ack.Status {
	case AckOK, AckUnknown, AckNotParty, AckAnswered, AckInvalid:
	default:
		return Ack{}, fmt.Errorf("%w: status %d", ErrBadAck, int32(ack.Status))
	}
	if m.Response == nil || !invitation || (ack.Status != AckOK && ack.Status != AckAnswered) {
		return ack, nil
	}
	r, ok := responseFromPB(m.Response)
	if !ok {
		return Ack{}, fmt.Errorf("%w: malformed response", ErrBadAck)
	}
	if r.InvitationID != id {
		return Ack{}, fmt.Errorf("%w: response to another invitation", ErrBadAck)
	}
	ack.Response = &r
	return ack, nil
}

// Invite sends an invitation to p.
func Invite(ctx context.Context, h host.Host, p peer.ID, inv Invitation) (Ack, error) {
	return send(ctx, h, p, inv.ID, &pb.InviteRequest{Msg: &pb.InviteRequest_Invitation{Invitation: inv.toPB()}})
}

// Respond sends the response to an invitation to its inviter p.
func Respond(ctx context.Context, h host.Host, p peer.ID, r Response) (Ack, error) {
	return send(ctx, h, p, r.InvitationID, &pb.InviteRequest{Msg: &pb.InviteRequest_Response{Response: r.toPB()}})
}

// Cancel withdraws invitation id sent to p.
func Cancel(ctx context.Context, h host.Host, p peer.ID, id string) (Ack, error) {
	return send(ctx, h, p, id, &pb.InviteRequest{Msg: &pb.InviteRequest_Cancel{Cancel: &pb.InvitationCancel{InvitationId: id}}})
}
