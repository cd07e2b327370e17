package session

import (
	"context"
	"errors"
	"fmt"
	"sync"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/protocols/internal/wire"
	"github.com/peercollab/peercollab/protocols/pb"
)

var log = logging.Logger("peercollab/session")

// Refusals: what a *StatusError unwraps to. A handler returns one of them
// (or a *StatusError with a detail) to refuse a request.
var (
	// ErrUnknown: the peer has no such session, or the requester has no
	// part in it.
	ErrUnknown = errors.New("session: the host knows no such session")
	// ErrNotMember: the requester is not, or no longer, a member.
	ErrNotMember = errors.New("session: you are not a member of this session")
	// ErrEnded: the session has ended.
	ErrEnded = errors.New("session: the session has ended")
	// ErrInvalid: the peer found the request malformed.
	ErrInvalid = errors.New("session: the peer refused the request as malformed")
	// ErrPending: a host request that the peer's user will decide on.
	ErrPending = errors.New("session: the peer will decide later")
	// ErrDeclined: a host request the peer declined.
	ErrDeclined = errors.New("session: the peer declined")
)

// ErrBadAnswer means a peer answered with something that does not hold
// together (an unknown status, a join answer of another session).
var ErrBadAnswer = errors.New("session: the peer answered with a malformed response")

// StatusError is a peer's refusal of a request: Err is one of the
// refusal sentinels, Detail what the peer added.
type StatusError struct {
	Err    error
	Detail string
}

func (e *StatusError) Error() string {
	if e.Detail != "" {
		return e.Err.Error() + ": " + e.Detail
	}
	return e.Err.Error()
}

// Unwrap returns the sentinel.
func (e *StatusError) Unwrap() error { return e.Err }

// Refuse returns the refusal err (a sentinel) with a detail.
func Refuse(err error, detail string) error { return &StatusError{Err: err, Detail: detail} }

// statusOf and errorOf map refusals to the wire and back.
func statusOf(err error) (pb.SessionResponse_Status, bool) {
	switch {
	case errors.Is(err, ErrUnknown):
		return pb.SessionResponse_UNKNOWN, true
	case errors.Is(err, ErrNotMember):
		return pb.SessionResponse_NOT_MEMBER, true
	case errors.Is(err, ErrEnded):
		return pb.SessionResponse_ENDED, true
	case errors.Is(err, ErrInvalid):
		return pb.SessionResponse_INVALID, true
	case errors.Is(err, ErrPending):
		return pb.SessionResponse_PENDING, true
	case errors.Is(err, ErrDeclined):
		return pb.SessionResponse_DECLINED, true
	}
	return 0, false
}

func errorOf(r *pb.SessionResponse) error {
	var err error
	switch r.GetStatus() {
	case pb.SessionResponse_OK:
		return nil
	case pb.SessionResponse_UNKNOWN:
		err = ErrUnknown
	case pb.SessionResponse_NOT_MEMBER:
		err = ErrNotMember
	case pb.SessionResponse_ENDED:
		err = ErrEnded
	case pb.SessionResponse_INVALID:
		err = ErrInvalid
	case pb.SessionResponse_PENDING:
		err = ErrPending
	case pb.SessionResponse_DECLINED:
		err = ErrDeclined
	default:
		return fmt.Errorf("%w: status %d", ErrBadAnswer, int32(r.GetStatus()))
	}
	return &StatusError{Err: err, Detail: r.GetDetail()}
}

// Handler answers the stream protocol's requests; each method runs on the
// goroutine of its stream. from is the authenticated requester; what the
// methods are given has been checked as far as the protocol can (well-formed
// IDs, data of the session named, signed by its sender). A method refuses
// with a refusal sentinel or a *StatusError; any other error resets the
// stream without an answer.
type Handler interface {
	// Join hands a member the roster, keys and topic tag.
	Join(from peer.ID, session, invitationID string) (Joined, error)
	// Fetch returns sender's messages first..last (at most MaxFetch) that
	// this node holds.
	Fetch(from peer.ID, session string, sender peer.ID, first, last uint64) ([]Data, error)
	// Post takes a member's own message (d.Sender is from) for the host to
	// publish.
	Post(from peer.ID, d Data) error
	// Leave takes a member out.
	Leave(from peer.ID, session string) error
	// HostRequest asks this node to host a session for app and invite
	// from; it returns the new session's ID, or ErrPending, or ErrDeclined.
	HostRequest(from peer.ID, app, message string) (session string, err error)
	// Deliver is given a topic message the host sent directly.
	Deliver(from peer.ID, session string, m TopicMessage) error
}

// Service answers session requests. Close removes its handler.
type Service struct {
	h    host.Host
	once sync.Once
}

// New registers the stream protocol's handler on h.
func New(h host.Host, handler Handler) *Service {
	h.SetStreamHandler(ID, wire.Handler(MaxRequestSize, Timeout, func() *pb.SessionRequest { return new(pb.SessionRequest) },
		func(_ context.Context, from peer.ID, r *pb.SessionRequest) (*pb.SessionResponse, error) {
			resp, err := dispatch(handler, from, r)
			if err == nil {
				return resp, nil
			}
			st, ok := statusOf(err)
			if !ok {
				log.Debugw("session request failed", "peer", from, "error", err)
				return nil, err
			}
			var se *StatusError
			detail := ""
			if errors.As(err, &se) {
				detail = se.Detail
			}
			return &pb.SessionResponse{Status: st, Detail: detail}, nil
		}))
	return &Service{h: h}
}

// Close removes the handler. It is idempotent.
func (s *Service) Close() error {
	s.once.Do(func() { s.h.RemoveStreamHandler(ID) })
	return nil
}

func invalid(detail string) error { return Refuse(ErrInvalid, detail) }

// dispatch checks a request and hands it to the handler.
func dispatch(h Handler, from peer.ID, r *pb.SessionRequest) (*pb.SessionResponse, error) {
	sid := r.GetSessionId()
	if _, ok := r.GetMsg().(*pb.SessionRequest_HostRequest); !ok && !ValidTag(sid) {
		return nil, invalid("malformed session ID")
	}
	ok := &pb.SessionResponse{Status: pb.SessionResponse_OK}
	switch m := r.GetMsg().(type) {
	case *pb.SessionRequest_Join:
		j, err := h.Join(from, sid, m.Join.GetInvitationId())
		if err != nil {
			return nil, err
		}
		ok.Roster, ok.TopicTag = j.Roster.toPB(), j.TopicTag
		for _, k := range j.Keys {
			ok.Keys = append(ok.Keys, keyToPB(k))
		}
		return ok, nil
	case *pb.SessionRequest_Fetch:
		sender, err := peer.IDFromBytes(m.Fetch.GetSender())
		first, last := m.Fetch.GetFrom(), m.Fetch.GetTo()
		if err != nil || first == 0 || last < first || first > MaxSeq {
			return nil, invalid("malformed fetch")
		}
		ds, err := h.Fetch(from, sid, sender, first, min(last, first+MaxFetch-1))
		if err != nil {
			return nil, err
		}
		for i := range ds[:min(len(ds), MaxFetch)] {
			ok.Messages = append(ok.Messages, ds[i].toPB())
		}
		return ok, nil
	case *pb.SessionRequest_Post:
		d := dataFromPB(m.Post.GetData())
		if CheckData(sid, &d) != nil || Verify(&d) != nil {
			return nil, invalid("malformed or forged post")
		}
		if d.Sender != from {
			return nil, invalid("a member posts its own messages only")
		}
		return ok, h.Post(from, d)
	case *pb.SessionRequest_Leave:
		return ok, h.Leave(from, sid)
	case *pb.SessionRequest_HostRequest:
		id, err := h.HostRequest(from, m.HostRequest.GetApplicationId(), m.HostRequest.GetMessage())
		if err != nil {
			return nil, err
		}
		ok.SessionId = id
		return ok, nil
	case *pb.SessionRequest_Deliver:
		if m.Deliver.GetMessage() == nil {
			return nil, invalid("empty delivery")
		}
		tm, err := topicFromPB(m.Deliver.GetMessage())
		if err != nil {
			return nil, invalid("malformed message")
		}
		if d := tm.Data; d != nil && (CheckData(sid, d) != nil || Verify(d) != nil) {
			return nil, invalid("malformed or forged message")
		}
		return ok, h.Deliver(from, sid, tm)
	}
	return nil, invalid("unknown request")
}

// request sends a request to p and returns its response, or the refusal
// it carries as an error.
func request(ctx context.Context, h host.Host, p peer.ID, r *pb.SessionRequest) (*pb.SessionResponse, error) {
	var resp pb.SessionResponse
	if err := wire.Exchange(ctx, h, p, ID, r, &resp, MaxResponseSize, Timeout); err != nil {
		return nil, err
	}
	if err := errorOf(&resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Join asks the host of session sid for the roster, keys and topic tag,
// naming the invitation this node accepted (the host takes the join as the
// acceptance when that has not arrived). The answer is checked: a roster
// of sid hosted by host, a valid topic tag, keys of epochs the roster
// knows; otherwise ErrBadAnswer.
func Join(ctx context.Context, h host.Host, hostID peer.ID, sid, invitationID string) (Joined, error) {
	resp, err := request(ctx, h, hostID, &pb.SessionRequest{SessionId: sid,
		Msg: &pb.SessionRequest_Join{Join: &pb.SessionJoin{InvitationId: invitationID}}})
	if err != nil {
		return Joined{}, err
	}
	r, err := rosterFromPB(resp.GetRoster())
	if resp.GetRoster() == nil || err != nil {
		return Joined{}, fmt.Errorf("%w: roster", ErrBadAnswer)
	}
	j := Joined{Roster: r, TopicTag: resp.GetTopicTag()}
	for _, m := range resp.GetKeys() {
		k, err := keyFromPB(m)
		if err != nil {
			return Joined{}, fmt.Errorf("%w: %v", ErrBadAnswer, err)
		}
		j.Keys = append(j.Keys, k)
	}
	if !j.check(sid, hostID) {
		return Joined{}, fmt.Errorf("%w: join answer", ErrBadAnswer)
	}
	return j, nil
}

// Fetch asks p for sender's messages first..last of session sid (gap
// repair). Of the answer it keeps the well-formed messages of that sender
// and range, signed by it, once each.
func Fetch(ctx context.Context, h host.Host, p peer.ID, sid string, sender peer.ID, first, last uint64) ([]Data, error) {
	resp, err := request(ctx, h, p, &pb.SessionRequest{SessionId: sid,
		Msg: &pb.SessionRequest_Fetch{Fetch: &pb.SessionFetch{Sender: []byte(sender), From: first, To: last}}})
	if err != nil {
		return nil, err
	}
	var out []Data
	seen := map[uint64]bool{}
	for _, m := range resp.GetMessages() {
		d := dataFromPB(m)
		if CheckData(sid, &d) != nil || d.Sender != sender || d.Seq < first || d.Seq > last || seen[d.Seq] || Verify(&d) != nil {
			continue
		}
		seen[d.Seq] = true
		out = append(out, d)
	}
	return out, nil
}

// Post hands this node's message d to the host, which publishes it.
func Post(ctx context.Context, h host.Host, hostID peer.ID, d Data) error {
	_, err := request(ctx, h, hostID, &pb.SessionRequest{SessionId: d.Session, Msg: &pb.SessionRequest_Post{Post: &pb.SessionPost{Data: d.toPB()}}})
	return err
}

// Leave tells the host of session sid that this node leaves.
func Leave(ctx context.Context, h host.Host, hostID peer.ID, sid string) error {
	_, err := request(ctx, h, hostID, &pb.SessionRequest{SessionId: sid, Msg: &pb.SessionRequest_Leave{Leave: &pb.SessionLeave{}}})
	return err
}

// Deliver hands topic message m of session sid to member p directly (the
// host, for a member it cannot reach on the topic).
func Deliver(ctx context.Context, h host.Host, p peer.ID, sid string, m TopicMessage) error {
	_, err := request(ctx, h, p, &pb.SessionRequest{SessionId: sid,
		Msg: &pb.SessionRequest_Deliver{Deliver: &pb.SessionDeliver{Message: m.toPB()}}})
	return err
}

// RequestHost asks p to host a session for app and invite this node. It
// returns the new session's ID when p accepted at once; a refusal that
// unwraps to ErrPending when p's user will decide, ErrDeclined when p
// refused.
func RequestHost(ctx context.Context, h host.Host, p peer.ID, app, message string) (string, error) {
	resp, err := request(ctx, h, p, &pb.SessionRequest{Msg: &pb.SessionRequest_HostRequest{HostRequest: &pb.HostRequest{ApplicationId: app, Message: message}}})
	if err != nil {
		return "", err
	}
	if !ValidTag(resp.GetSessionId()) {
		return "", fmt.Errorf("%w: session ID", ErrBadAnswer)
	}
	return resp.GetSessionId(), nil
}
