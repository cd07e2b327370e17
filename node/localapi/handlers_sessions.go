package localapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/internal/sentence"
	"github.com/peercollab/peercollab/node/sessions"
)

// sessionResult converts a session service's answer.
func sessionResult(v sessions.View, err error) (apitype.Session, error) {
	if err != nil {
		return apitype.Session{}, err
	}
	return sessionView(v), nil
}

func (s *Server) createSession(r *http.Request) (apitype.Session, error) {
	var req apitype.SessionCreateRequest
	if err := decode(r, &req); err != nil {
		return apitype.Session{}, err
	}
	return sessionResult(s.n.Sessions().Create(req.AppID))
}

func (s *Server) listSessions(*http.Request) ([]apitype.Session, error) {
	return mapSlice(s.n.Sessions().List(), sessionView), nil
}

func (s *Server) showSession(r *http.Request) (apitype.Session, error) {
	return sessionResult(s.n.Sessions().Get(r.PathValue("id")))
}

func (s *Server) sessionInvite(r *http.Request) (apitype.SessionInviteResponse, error) {
	var req apitype.SessionInviteRequest
	if err := decode(r, &req); err != nil {
		return apitype.SessionInviteResponse{}, err
	}
	expiry, err := parseTimeout(req.Timeout)
	if err != nil {
		return apitype.SessionInviteResponse{}, err
	}
	targets, err := s.n.InviteTargets(req.Peers)
	if err != nil {
		return apitype.SessionInviteResponse{}, err
	}
	v, recs, err := s.n.Sessions().InviteTo(r.PathValue("id"), targets, req.Message, expiry)
	if err != nil {
		return apitype.SessionInviteResponse{}, err
	}
	return apitype.SessionInviteResponse{Session: sessionView(v), Invitations: mapSlice(recs, invitationView)}, nil
}

func (s *Server) sessionOp(op func(id string) (sessions.View, error)) func(*http.Request) (apitype.Session, error) {
	return func(r *http.Request) (apitype.Session, error) {
		v, err := op(r.PathValue("id"))
		return sessionResult(v, s.sessionError(r.PathValue("id"), err))
	}
}

// sessionError tells a node that is no longer in a session why, where the
// session service only says it is not a member "(yet)": its host removed
// it, or it left.
func (s *Server) sessionError(id string, err error) error {
	if !errors.Is(err, sessions.ErrNotJoined) {
		return err
	}
	v, gerr := s.n.Sessions().Get(id)
	if gerr != nil {
		return err
	}
	switch apitype.Standing(v.Me) {
	case apitype.StandingRemoved:
		return &apitype.Error{Status: http.StatusConflict, Code: apitype.CodeRemovedFromSession,
			Message: "The host removed you from this session; you read nothing sent after that, and can send nothing."}
	case apitype.StandingLeft:
		return &apitype.Error{Status: http.StatusConflict, Code: apitype.CodeLeftSession,
			Message: "You left this session; ask its host to invite you again."}
	}
	return err
}

func (s *Server) sessionRemove(r *http.Request) (apitype.Session, error) {
	var req apitype.PeerRequest
	if err := decode(r, &req); err != nil {
		return apitype.Session{}, err
	}
	p, err := s.n.ResolvePeer(req.Peer)
	if err != nil {
		return apitype.Session{}, err
	}
	return sessionResult(s.n.Sessions().Remove(r.PathValue("id"), p))
}

func (s *Server) sessionLeave(r *http.Request) (apitype.Session, error) {
	v, err := s.n.Sessions().Leave(r.Context(), r.PathValue("id"))
	return sessionResult(v, s.sessionError(r.PathValue("id"), err))
}

func (s *Server) sessionSend(r *http.Request) (apitype.Message, error) {
	var req apitype.SessionSendRequest
	if err := decode(r, &req); err != nil {
		return apitype.Message{}, err
	}
	m, err := s.n.Sessions().Send(r.Context(), r.PathValue("id"), req.Data)
	if err != nil {
		return apitype.Message{}, s.sessionError(r.PathValue("id"), err)
	}
	return messageView(m), nil
}

func (s *Server) sessionMessages(r *http.Request) ([]apitype.Message, error) {
	var after uint64
	if a := r.URL.Query().Get("after"); a != "" {
		var err error
		if after, err = strconv.ParseUint(a, 10, 64); err != nil {
			return nil, badValue(apitype.CodeBadIndex, "after %s is not a message index", sentence.Quote(a))
		}
	}
	ms, err := s.n.Sessions().Messages(r.PathValue("id"), after)
	if err != nil {
		return nil, err
	}
	out := make([]apitype.Message, len(ms))
	for i, m := range ms {
		out[i] = messageView(m)
	}
	return out, nil
}

func (s *Server) hostRequest(r *http.Request) (apitype.HostRequestResult, error) {
	var req apitype.HostRequestBody
	if err := decode(r, &req); err != nil {
		return apitype.HostRequestResult{}, err
	}
	p, err := s.n.ResolvePeer(req.Peer)
	if err != nil {
		return apitype.HostRequestResult{}, err
	}
	sid, err := s.n.Sessions().RequestHost(r.Context(), p, req.AppID, req.Message)
	if errors.Is(err, sessions.ErrPending) {
		return apitype.HostRequestResult{Peer: p, Pending: true}, nil
	}
	return apitype.HostRequestResult{Peer: p, Session: sid}, err
}

func (s *Server) listHostRequests(*http.Request) ([]apitype.HostRequest, error) {
	return mapSlice(s.n.Sessions().HostRequests(), hostRequestView), nil
}

func (s *Server) answerHostRequest(accept bool) func(*http.Request) (apitype.HostRequest, error) {
	return func(r *http.Request) (apitype.HostRequest, error) {
		req, err := s.n.Sessions().AnswerHostRequest(r.PathValue("id"), accept)
		if err != nil {
			return apitype.HostRequest{}, err
		}
		return hostRequestView(req), nil
	}
}
