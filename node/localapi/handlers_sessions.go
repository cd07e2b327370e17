package localapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/sessions"
)

func (s *Server) createSession(r *http.Request) (sessions.View, error) {
	var req SessionCreateRequest
	if err := decode(r, &req); err != nil {
		return sessions.View{}, err
	}
	return s.n.Sessions().Create(req.AppID)
}

func (s *Server) listSessions(*http.Request) ([]sessions.View, error) {
	return s.n.Sessions().List(), nil
}

func (s *Server) showSession(r *http.Request) (sessions.View, error) {
	return s.n.Sessions().Get(r.PathValue("id"))
}

func (s *Server) sessionInvite(r *http.Request) (SessionInviteResponse, error) {
	var req SessionInviteRequest
	if err := decode(r, &req); err != nil {
		return SessionInviteResponse{}, err
	}
	expiry, err := parseTimeout(req.Timeout)
	if err != nil {
		return SessionInviteResponse{}, err
	}
	peers := make([]peer.ID, 0, len(req.Peers))
	for _, q := range req.Peers {
		p, err := s.n.ResolvePeer(q)
		if err != nil {
			return SessionInviteResponse{}, err
		}
		peers = append(peers, p)
	}
	v, recs, err := s.n.Sessions().Invite(r.PathValue("id"), peers, req.Message, expiry)
	return SessionInviteResponse{Session: v, Invitations: recs}, err
}

func (s *Server) sessionOp(op func(id string) (sessions.View, error)) func(*http.Request) (sessions.View, error) {
	return func(r *http.Request) (sessions.View, error) { return op(r.PathValue("id")) }
}

func (s *Server) sessionRemove(r *http.Request) (sessions.View, error) {
	var req PeerRequest
	if err := decode(r, &req); err != nil {
		return sessions.View{}, err
	}
	p, err := s.n.ResolvePeer(req.Peer)
	if err != nil {
		return sessions.View{}, err
	}
	return s.n.Sessions().Remove(r.PathValue("id"), p)
}

func (s *Server) sessionLeave(r *http.Request) (sessions.View, error) {
	return s.n.Sessions().Leave(r.Context(), r.PathValue("id"))
}

func (s *Server) sessionSend(r *http.Request) (sessions.Message, error) {
	var req SessionSendRequest
	if err := decode(r, &req); err != nil {
		return sessions.Message{}, err
	}
	return s.n.Sessions().Send(r.Context(), r.PathValue("id"), req.Data)
}

func (s *Server) sessionMessages(r *http.Request) ([]sessions.Message, error) {
	var after uint64
	if a := r.URL.Query().Get("after"); a != "" {
		var err error
		if after, err = strconv.ParseUint(a, 10, 64); err != nil {
			return nil, badValue(CodeBadIndex, "after %s is not a message index", quote(a))
		}
	}
	ms, err := s.n.Sessions().Messages(r.PathValue("id"), after)
	if ms == nil {
		ms = []sessions.Message{}
	}
	return ms, err
}

func (s *Server) hostRequest(r *http.Request) (HostRequestResult, error) {
	var req HostRequestBody
	if err := decode(r, &req); err != nil {
		return HostRequestResult{}, err
	}
	p, err := s.n.ResolvePeer(req.Peer)
	if err != nil {
		return HostRequestResult{}, err
	}
	sid, err := s.n.Sessions().RequestHost(r.Context(), p, req.AppID, req.Message)
	if errors.Is(err, sessions.ErrPending) {
		return HostRequestResult{Peer: p, Pending: true}, nil
	}
	return HostRequestResult{Peer: p, Session: sid}, err
}

func (s *Server) listHostRequests(*http.Request) ([]sessions.HostRequest, error) {
	return s.n.Sessions().HostRequests(), nil
}

func (s *Server) answerHostRequest(accept bool) func(*http.Request) (sessions.HostRequest, error) {
	return func(r *http.Request) (sessions.HostRequest, error) {
		return s.n.Sessions().AnswerHostRequest(r.PathValue("id"), accept)
	}
}
