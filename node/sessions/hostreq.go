package sessions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/internal/prefix"
	"github.com/peercollab/peercollab/protocols/invite"
	psession "github.com/peercollab/peercollab/protocols/session"
)

// EvtHostRequest is the event type of a host request received or answered.
const EvtHostRequest = "host-request.changed"

// maxHostRequests bounds the host requests waiting for the user.
const maxHostRequests = 100

// Errors of host requests.
var (
	ErrNoRequest = errors.New("sessions: no such host request")
	// ErrAmbiguousRequest: more than one host request starts with the
	// prefix given.
	ErrAmbiguousRequest = errors.New("sessions: more than one host request starts so")
	ErrAnswered         = errors.New("sessions: the host request was answered already")
	ErrPending          = errors.New("sessions: the peer will decide later; its invitation comes if it agrees")
	ErrDeclined         = errors.New("sessions: the peer declined to host")
)

// HostRequest is a request from a peer that this node host a session for
// an application and invite it.
type HostRequest struct {
	ID       string    `json:"id"`
	From     peer.ID   `json:"from"`
	App      string    `json:"application_id"`
	Message  string    `json:"message,omitempty"`
	Received time.Time `json:"received"`
	// State is pending, accepted or declined.
	State   string `json:"state"`
	Session string `json:"session,omitempty"`
}

// HostRequest answers a peer's request to host: declined when the
// application is not registered here, accepted at once when the
// application takes host requests automatically (the session is created
// and the requester invited), otherwise kept for the user to decide.
func (h handler) HostRequest(from peer.ID, app, message string) (string, error) {
	s := h.s
	if checkApp(app) != nil || utf8.RuneCountInString(message) > invite.MaxMessage {
		return "", psession.ErrInvalid
	}
	registered, auto := s.cfg.App(app)
	if !registered {
		return "", psession.Refuse(psession.ErrDeclined, "application not registered")
	}
	req := &HostRequest{ID: invite.NewID(), From: from, App: app, Message: message, Received: time.Now().UTC(), State: "pending"}
	if auto {
		v, err := s.acceptRequest(req)
		if err != nil {
			return "", psession.Refuse(psession.ErrDeclined, err.Error())
		}
		return v.ID, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pending := 0
	for _, r := range s.requests {
		if r.State == "pending" {
			pending++
		}
	}
	if pending >= maxHostRequests {
		return "", psession.Refuse(psession.ErrDeclined, "too many requests waiting")
	}
	s.requests[req.ID] = req
	s.cfg.Hub.Publish(EvtHostRequest, *req)
	return "", psession.ErrPending
}

// acceptRequest creates the session and invites the requester.
func (s *Service) acceptRequest(req *HostRequest) (View, error) {
	v, err := s.Create(req.App)
	if err != nil {
		return View{}, err
	}
	if _, _, err := s.Invite(v.ID, []peer.ID{req.From}, req.Message, 0); err != nil {
		return View{}, err
	}
	s.mu.Lock()
	req.State, req.Session = "accepted", v.ID
	s.requests[req.ID] = req
	s.cfg.Hub.Publish(EvtHostRequest, *req)
	s.mu.Unlock()
	return s.Get(v.ID)
}

// HostRequests lists the host requests received, newest first.
func (s *Service) HostRequests() []HostRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]HostRequest, 0, len(s.requests))
	for _, r := range s.requests {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b HostRequest) int { return cmp.Or(b.Received.Compare(a.Received), cmp.Compare(a.ID, b.ID)) })
	return out
}

// AnswerHostRequest accepts (creating the session and inviting the
// requester) or declines a pending host request, named by ID or unique
// prefix.
func (s *Service) AnswerHostRequest(id string, accept bool) (HostRequest, error) {
	s.mu.Lock()
	found, ok := s.requests[id]
	if !ok {
		var n int
		switch found, n = prefix.Find(maps.All(s.requests), id); n {
		case 0:
			s.mu.Unlock()
			return HostRequest{}, fmt.Errorf("%w: %q", ErrNoRequest, id)
		case 1:
		default:
			s.mu.Unlock()
			return HostRequest{}, fmt.Errorf("%w: %q", ErrAmbiguousRequest, id)
		}
	}
	if found.State != "pending" {
		s.mu.Unlock()
		return HostRequest{}, ErrAnswered
	}
	if !accept {
		found.State = "declined"
		s.cfg.Hub.Publish(EvtHostRequest, *found)
		r := *found
		s.mu.Unlock()
		return r, nil
	}
	s.mu.Unlock()
	if _, err := s.acceptRequest(found); err != nil {
		return HostRequest{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return *found, nil
}

// RequestHost asks peer p to host a session for app and invite this node.
// It returns the new session's ID when p accepted at once, ErrPending when
// p's user will decide, ErrDeclined when p refused.
func (s *Service) RequestHost(ctx context.Context, p peer.ID, app, message string) (string, error) {
	if err := checkApp(app); err != nil {
		return "", err
	}
	if err := s.cfg.Connect(ctx, p); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.asked[askKey{p, app}] = time.Now()
	s.mu.Unlock()
	id, err := psession.RequestHost(ctx, s.cfg.Host, p, app, message)
	var se *psession.StatusError
	switch {
	case errors.Is(err, psession.ErrPending):
		return "", ErrPending
	case errors.Is(err, psession.ErrDeclined) && errors.As(err, &se) && se.Detail != "":
		return "", fmt.Errorf("%w: %s", ErrDeclined, se.Detail)
	case errors.Is(err, psession.ErrDeclined):
		return "", ErrDeclined
	}
	return id, err
}
