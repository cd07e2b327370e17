package invitations

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/invite"
)

// handler answers the invitation protocol for the service.
type handler struct{ s *Service }

func (h handler) Invited(from peer.ID, inv invite.Invitation, card *contacts.Card) invite.Ack {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	key := string(Received) + "/" + inv.ID
	if r, ok := s.records[key]; ok { // a resend: we have it
		if r.Peer != from {
			return invite.Ack{Status: invite.AckNotParty}
		}
		if r.State.Answered() {
			resp := responseOf(*r)
			return invite.Ack{Status: invite.AckAnswered, Response: &resp}
		}
		return invite.Ack{Status: invite.AckOK}
	}
	if !s.allowLocked(from) {
		return invite.Ack{Status: invite.AckOK, Response: &invite.Response{InvitationID: inv.ID, Action: invite.Error, Reason: invite.RateLimited}}
	}
	trusted := s.cfg.Trust(card)
	decline := func(reason invite.Reason) invite.Ack {
		return invite.Ack{Status: invite.AckOK, Response: &invite.Response{InvitationID: inv.ID, Action: invite.Declined, Reason: reason}}
	}
	switch s.cfg.Policy() {
	case Nobody:
		return decline(invite.NotAccepting)
	case Contacts:
		if !trusted {
			return decline(invite.NotAccepting)
		}
	}
	app, ok := s.cfg.App(inv.AppID)
	if !ok {
		return decline(invite.AppNotRegistered)
	}
	r := &Record{Invitation: inv, Direction: Received, Peer: from, PeerName: s.cfg.Name(from), State: Pending,
		Trusted: trusted, Updated: time.Now().UTC(), Card: card.Marshal()}
	if r.PeerName == from.String() {
		r.PeerName = card.Profile().DisplayName
	}
	s.records[key] = r
	if app.AutoAccept && trusted {
		// The acceptance travels in the acknowledgement; a lost one is
		// repeated when the inviter sends the invitation again.
		s.answerLocked(r, Accepted, app, stepNone)
		return invite.Ack{Status: invite.AckOK, Response: &invite.Response{InvitationID: inv.ID, Action: invite.Accepted}}
	}
	s.saveLocked(r)
	s.scheduleLocked(r)
	return invite.Ack{Status: invite.AckOK}
}

// allowLocked applies the per-peer rate limit.
func (s *Service) allowLocked(p peer.ID) bool {
	l, ok := s.limiters[p]
	if !ok {
		if len(s.limiters) > 4096 { // forget idle peers now and then
			clear(s.limiters)
		}
		l = rate.NewLimiter(s.cfg.RateLimit, s.cfg.RateBurst)
		s.limiters[p] = l
	}
	return l.Allow()
}

func (h handler) Responded(from peer.ID, resp invite.Response) invite.Ack {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[string(Sent)+"/"+resp.InvitationID]
	switch {
	case !ok:
		return invite.Ack{Status: invite.AckUnknown}
	case r.Peer != from:
		log.Debugw("response from a peer not party to the invitation", "invitation", r.ID, "peer", from)
		return invite.Ack{Status: invite.AckNotParty}
	case r.State.Answered():
		return invite.Ack{Status: invite.AckAnswered}
	}
	s.answeredLocked(r, resp)
	return invite.Ack{Status: invite.AckOK}
}

func (h handler) Cancelled(from peer.ID, id string) invite.Ack {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[string(Received)+"/"+id]
	switch {
	case !ok:
		return invite.Ack{Status: invite.AckUnknown}
	case r.Peer != from:
		log.Debugw("cancel from a peer not party to the invitation", "invitation", id, "peer", from)
		return invite.Ack{Status: invite.AckNotParty}
	case r.State.Answered():
		return invite.Ack{Status: invite.AckAnswered}
	}
	s.setLocked(r, Cancelled, invite.NoReason, stepNone)
	return invite.Ack{Status: invite.AckOK}
}

// Accept accepts a received invitation: the inviter is told, and the
// application's launch command runs.
func (s *Service) Accept(id string) (Record, error) { return s.answer(id, Accepted) }

// Decline declines a received invitation.
func (s *Service) Decline(id string) (Record, error) { return s.answer(id, Declined) }

func (s *Service) answer(id string, st State) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.findLocked(id)
	if err != nil {
		return Record{}, err
	}
	if r.Direction != Received {
		return Record{}, ErrNotReceived
	}
	if r.State.Answered() {
		return Record{}, fmt.Errorf("%w (it is %s)", ErrAnswered, r.State)
	}
	app, ok := s.cfg.App(r.AppID)
	if st == Accepted && !ok {
		return Record{}, ErrNoApp
	}
	s.answerLocked(r, st, app, stepRespond)
	return r.View(), nil
}

// answerLocked records an answer, queues it for the inviter unless it goes
// back another way (unacked is stepNone), and launches the application on
// acceptance.
func (s *Service) answerLocked(r *Record, st State, app App, unacked step) {
	s.setLocked(r, st, invite.NoReason, unacked)
	if unacked != stepNone {
		s.deliverLocked(r)
	}
	if st == Accepted && app.Launch != "" {
		if err := s.launch(r, app.Launch); err != nil {
			log.Warnw("launch application", "invitation", r.ID, "application", r.AppID, "error", err)
			return
		}
		r.Launched = true
		s.saveLocked(r)
	}
}

// Environment variables a launched application finds the invitation in.
const (
	EnvInvitation = "PEERCOLLAB_INVITATION"
	EnvHome       = "PEERCOLLAB_HOME"
	EnvApp        = "PEERCOLLAB_APP"
	EnvInviter    = "PEERCOLLAB_INVITER"
	EnvSession    = "PEERCOLLAB_SESSION"
)

// launch runs an application's launch command with sh, detached: its
// output goes to launch/ID.log in the data directory, and the daemon does
// not wait for it.
func (s *Service) launch(r *Record, command string) error {
	dir := filepath.Join(s.cfg.Home, "launch")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(dir, r.ID+".log")
	// The shell starts the application in the background and exits at once;
	// the application is then the child of init, not of the daemon.
	script := fmt.Sprintf("(%s) >>%s 2>&1 </dev/null &", command, shellQuote(logPath))
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = s.cfg.Home
	cmd.Env = append(os.Environ(),
		EnvInvitation+"="+r.ID, EnvHome+"="+s.cfg.Home, EnvApp+"="+r.AppID,
		EnvInviter+"="+r.Peer.String(), EnvSession+"="+r.SessionID)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	log.Infow("launched application", "invitation", r.ID, "application", r.AppID, "log", logPath)
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
