package localapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/internal/sentence"
	"github.com/peercollab/peercollab/protocols/invite"
)

func (s *Server) invite(r *http.Request) (apitype.InvitationList, error) {
	var req apitype.InviteRequest
	if err := decode(r, &req); err != nil {
		return apitype.InvitationList{}, err
	}
	expiry, err := parseTimeout(req.Timeout)
	if err != nil {
		return apitype.InvitationList{}, err
	}
	targets, err := s.n.InviteTargets(req.Peers)
	if err != nil {
		return apitype.InvitationList{}, err
	}
	recs, err := s.n.Invitations().SendTo(targets, invitations.Request{AppID: req.AppID, Message: req.Message, Data: req.Data, Expiry: expiry, SessionID: req.SessionID})
	if err != nil {
		return apitype.InvitationList{}, err
	}
	return invitationList(recs[0].Batch, recs), nil
}

func (s *Server) listInvitations(r *http.Request) (apitype.InvitationList, error) {
	q := r.URL.Query()
	f := invitations.Filter{Direction: invitations.Direction(q.Get("direction")), Batch: q.Get("batch"), SessionID: q.Get("session")}
	if f.Direction != "" && f.Direction != invitations.Sent && f.Direction != invitations.Received {
		return apitype.InvitationList{}, badValue(apitype.CodeBadDirection, "direction %s is neither sent nor received", sentence.Quote(string(f.Direction)))
	}
	if o := q.Get("open"); o != "" {
		var err error
		if f.Open, err = strconv.ParseBool(o); err != nil {
			return apitype.InvitationList{}, badValue(apitype.CodeBadFlag, "open %s is neither true nor false", sentence.Quote(o))
		}
	}
	recs := s.n.Invitations().List(f)
	if recs == nil {
		recs = []invitations.Record{}
	}
	return invitationList(f.Batch, recs), nil
}

func (s *Server) showInvitation(r *http.Request) (apitype.InvitationDetail, error) {
	rec, err := s.n.Invitations().Get(r.PathValue("id"))
	if err != nil {
		return apitype.InvitationDetail{}, err
	}
	d := apitype.InvitationDetail{Invitation: invitationView(rec)}
	if rec.Direction == invitations.Received {
		d.InviterCard = string(rec.Card)
		if chk, err := s.n.CheckCard(rec.Card); err == nil {
			v := cardView(chk, s.nickname)
			d.Inviter = &v
		}
	}
	if c, err := s.n.Contacts().Get(rec.Peer); err == nil {
		d.Contact = contactPtrView(c)
	}
	return d, nil
}

// answerInvitation accepts, declines or cancels the invitation of the {id}
// path value with op.
func answerInvitation(op func(id string) (invitations.Record, error)) func(*http.Request) (apitype.Invitation, error) {
	return func(r *http.Request) (apitype.Invitation, error) {
		rec, err := op(r.PathValue("id"))
		if err != nil {
			return apitype.Invitation{}, err
		}
		return invitationView(rec), nil
	}
}

func (s *Server) cancelUnanswered(r *http.Request) (apitype.InvitationList, error) {
	var req apitype.BatchRequest
	if err := decode(r, &req); err != nil {
		return apitype.InvitationList{}, err
	}
	if req.Batch == "" {
		return apitype.InvitationList{}, badValue(apitype.CodeBadBatch, "name the batch of invitations")
	}
	for _, rec := range s.n.Invitations().List(invitations.Filter{Direction: invitations.Sent, Batch: req.Batch, Open: true}) {
		s.n.Invitations().Cancel(rec.ID)
	}
	recs := s.n.Invitations().List(invitations.Filter{Batch: req.Batch})
	if recs == nil {
		recs = []invitations.Record{}
	}
	return invitationList(req.Batch, recs), nil
}

func (s *Server) policy() apitype.PolicyBody {
	return apitype.PolicyBody{Policy: apitype.Policy(s.n.InvitationPolicy())}
}

func (s *Server) getPolicy(*http.Request) (apitype.PolicyBody, error) { return s.policy(), nil }

func (s *Server) setPolicy(r *http.Request) (apitype.PolicyBody, error) {
	var wire policyWire
	if err := decode(r, &wire); err != nil {
		return apitype.PolicyBody{}, err
	}
	req, err := wire.request()
	if err != nil {
		return apitype.PolicyBody{}, err
	}
	p, err := policyArg(req.Policy)
	if err != nil {
		return apitype.PolicyBody{}, err
	}
	if err := s.n.SetInvitationPolicy(p); err != nil {
		return apitype.PolicyBody{}, err
	}
	return s.policy(), nil
}

// parseTimeout reads an invitation's timeout; empty means the default.
func parseTimeout(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return parseDuration("timeout", s, apitype.CodeBadTimeout, time.Millisecond, invite.MaxExpiry, "5m")
}
