package localapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/protocols/invite"
)

func (s *Server) invite(r *http.Request) (InvitationList, error) {
	var req InviteRequest
	if err := decode(r, &req); err != nil {
		return InvitationList{}, err
	}
	expiry, err := parseTimeout(req.Timeout)
	if err != nil {
		return InvitationList{}, err
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
	f := invitations.Filter{Direction: invitations.Direction(q.Get("direction")), Batch: q.Get("batch"), SessionID: q.Get("session")}
	if f.Direction != "" && f.Direction != invitations.Sent && f.Direction != invitations.Received {
		return InvitationList{}, badValue(CodeBadDirection, "direction %s is neither sent nor received", quote(string(f.Direction)))
	}
	if o := q.Get("open"); o != "" {
		var err error
		if f.Open, err = strconv.ParseBool(o); err != nil {
			return InvitationList{}, badValue(CodeBadFlag, "open %s is neither true nor false", quote(o))
		}
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
		return InvitationList{}, badValue(CodeBadBatch, "name the batch of invitations")
	}
	for _, rec := range s.n.Invitations().List(invitations.Filter{Direction: invitations.Sent, Batch: req.Batch, Open: true}) {
		s.n.Invitations().Cancel(rec.ID)
	}
	recs := s.n.Invitations().List(invitations.Filter{Batch: req.Batch})
	if recs == nil {
		recs = []invitations.Record{}
	}
	return InvitationList{Batch: req.Batch, Invitations: recs, Tally: invitations.Count(recs)}, nil
}

func (s *Server) getPolicy(*http.Request) (PolicyBody, error) {
	return PolicyBody{s.n.InvitationPolicy()}, nil
}

func (s *Server) setPolicy(r *http.Request) (PolicyBody, error) {
	var wire policyWire
	if err := decode(r, &wire); err != nil {
		return PolicyBody{}, err
	}
	req, err := wire.request()
	if err != nil {
		return PolicyBody{}, err
	}
	if err := s.n.SetInvitationPolicy(req.Policy); err != nil {
		return PolicyBody{}, err
	}
	return PolicyBody{s.n.InvitationPolicy()}, nil
}

// parseTimeout reads an invitation's timeout; empty means the default.
func parseTimeout(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return parseDuration("timeout", s, CodeBadTimeout, time.Millisecond, invite.MaxExpiry, "5m")
}
