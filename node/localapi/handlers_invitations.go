package localapi

import (
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/invitations"
)

func (s *Server) invite(r *http.Request) (InvitationList, error) {
	var req InviteRequest
	if err := decode(r, &req); err != nil {
		return InvitationList{}, err
	}
	var expiry time.Duration
	if req.Timeout != "" {
		var err error
		if expiry, err = time.ParseDuration(req.Timeout); err != nil || expiry <= 0 {
			return InvitationList{}, badRequest("timeout %q is not a positive duration such as 5m", req.Timeout)
		}
	}
	peers := make([]peer.ID, 0, len(req.Peers))
	for _, q := range req.Peers {
		p, err := s.n.ResolvePeer(q)
		if err != nil {
			return InvitationList{}, err
		}
		peers = append(peers, p)
	}
	recs, err := s.n.Invitations().Send(peers, invitations.Request{AppID: req.AppID, Message: req.Message, Data: req.Data, Expiry: expiry, SessionID: req.SessionID})
	if err != nil {
		return InvitationList{}, err
	}
	return InvitationList{Batch: recs[0].Batch, Invitations: recs, Tally: invitations.Count(recs)}, nil
}

func (s *Server) listInvitations(r *http.Request) (InvitationList, error) {
	q := r.URL.Query()
	f := invitations.Filter{Direction: invitations.Direction(q.Get("direction")), Batch: q.Get("batch"), SessionID: q.Get("session"), Open: q.Get("open") != ""}
	if f.Direction != "" && f.Direction != invitations.Sent && f.Direction != invitations.Received {
		return InvitationList{}, badRequest("direction must be sent or received")
	}
	recs := s.n.Invitations().List(f)
	if recs == nil {
		recs = []invitations.Record{}
	}
	return InvitationList{Batch: f.Batch, Invitations: recs, Tally: invitations.Count(recs)}, nil
}

func (s *Server) showInvitation(r *http.Request) (InvitationDetail, error) {
	rec, err := s.n.Invitations().Get(r.PathValue("id"))
	if err != nil {
		return InvitationDetail{}, err
	}
	d := InvitationDetail{Invitation: rec.View()}
	if rec.Direction == invitations.Received {
		d.InviterCard = string(rec.Card)
		if chk, err := s.n.CheckCard(rec.Card); err == nil {
			v := cardView(chk, s.nickname)
			d.Inviter = &v
		}
	}
	if c, err := s.n.Contacts().Get(rec.Peer); err == nil {
		d.Contact = c
	}
	return d, nil
}

func (s *Server) acceptInvitation(r *http.Request) (invitations.Record, error) {
	return s.n.Invitations().Accept(r.PathValue("id"))
}

func (s *Server) declineInvitation(r *http.Request) (invitations.Record, error) {
	return s.n.Invitations().Decline(r.PathValue("id"))
}

func (s *Server) cancelInvitation(r *http.Request) (invitations.Record, error) {
	return s.n.Invitations().Cancel(r.PathValue("id"))
}

func (s *Server) cancelUnanswered(r *http.Request) (InvitationList, error) {
	var req BatchRequest
	if err := decode(r, &req); err != nil {
		return InvitationList{}, err
	}
	if req.Batch == "" {
		return InvitationList{}, badRequest("name the batch of invitations")
	}
	for _, rec := range s.n.Invitations().List(invitations.Filter{Direction: invitations.Sent, Batch: req.Batch, Open: true}) {
		s.n.Invitations().Cancel(rec.ID)
	}
	recs := s.n.Invitations().List(invitations.Filter{Batch: req.Batch})
	return InvitationList{Batch: req.Batch, Invitations: recs, Tally: invitations.Count(recs)}, nil
}

func (s *Server) getPolicy(*http.Request) (PolicyBody, error) {
	return PolicyBody{s.n.InvitationPolicy()}, nil
}

func (s *Server) setPolicy(r *http.Request) (PolicyBody, error) {
	var req PolicyBody
	if err := decode(r, &req); err != nil {
		return PolicyBody{}, err
	}
	err := s.n.SetInvitationPolicy(req.Policy)
	return PolicyBody{s.n.InvitationPolicy()}, err
}
