package invitations

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/invite"
)

// handler answers the invitation protocol for the service.
type handler struct{ s *Service }

func (h handler) Invited(from peer.ID, addr ma.Multiaddr, inv invite.Invitation, card *contacts.Card) invite.Ack {
	s := h.s
	// Who the inviter is does not need the lock (the contact store has
	// its own).
	trusted := s.cfg.Trust(card)
	stranger := !trusted && !s.cfg.IsContact(from)
	src := sourceOf(addr)
	now := time.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	key := string(Received) + "/" + inv.ID
	if e, ok := s.records[key]; ok { // a resend: we have it
		if e.Peer != from {
			return invite.Ack{Status: invite.AckNotParty}
		}
		if e.State.Answered() {
			resp := responseOf(e.Record)
			return invite.Ack{Status: invite.AckAnswered, Response: &resp}
		}
		return invite.Ack{Status: invite.AckOK}
	}
	refuse := func(reason invite.Reason) invite.Ack {
		return invite.Ack{Status: invite.AckOK, Response: &invite.Response{InvitationID: inv.ID, Action: invite.Error, Reason: reason}}
	}
	decline := func(reason invite.Reason) invite.Ack {
		return invite.Ack{Status: invite.AckOK, Response: &invite.Response{InvitationID: inv.ID, Action: invite.Declined, Reason: reason}}
	}
	if limiter := s.in.allow(from, src, stranger, now); limiter != "" {
		log.Debugw("invitation rate limited", "peer", from, "source", src.addr, "stranger", stranger, "limiter", limiter)
		return refuse(invite.RateLimited)
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
	cardPEM := card.Marshal()
	e := &entry{stranger: stranger, src: src, cost: costOf(&inv, cardPEM)}
	e.Record = Record{Invitation: inv, Direction: Received, Peer: from, State: Pending,
		Trusted: trusted, Updated: now.UTC()}
	e.Data, e.InviterCard = nil, nil
	if addr != nil {
		e.Source = addr.String()
	}
	p := payload{Data: inv.Data, Card: cardPEM}
	if app.AutoAccept && trusted {
		// The acceptance travels in the acknowledgement; a lost one is
		// repeated when the inviter sends the invitation again.
		s.nameLocked(e, card)
		if err := s.addLocked(e, p); err != nil {
			log.Errorw("store invitation", "invitation", inv.ID, "error", err)
			return refuse(invite.NoReason)
		}
		s.answerLocked(e, Accepted, app, stepNone)
		return invite.Ack{Status: invite.AckOK, Response: &invite.Response{InvitationID: inv.ID, Action: invite.Accepted}}
	}
	full := s.in.room(e)
	if f := full == fullBudget; stranger && f != s.in.full {
		s.in.full = f
		if f {
			log.Infow("refusing invitations from strangers: their budget is full", "stored", s.in.strangers.n, "bytes", s.in.strangers.bytes)
		} else {
			log.Infow("taking invitations from strangers again", "stored", s.in.strangers.n, "bytes", s.in.strangers.bytes)
		}
	}
	if full != "" {
		log.Debugw("invitation refused: inbox full", "peer", from, "source", src.addr, "stranger", stranger, "full", full)
		return refuse(invite.InboxFull)
	}
	if stranger {
		if cap := now.Add(s.lim.StrangerExpiry); e.Expires.After(cap) {
			e.Expires = cap
		}
	}
	s.nameLocked(e, card)
	if err := s.addLocked(e, p); err != nil {
		log.Errorw("store invitation", "invitation", inv.ID, "error", err)
		return refuse(invite.NoReason)
	}
	s.in.charge(e)
	s.saveLocked(e)
	s.scheduleLocked(e)
	return invite.Ack{Status: invite.AckOK}
}

// nameLocked names a received invitation's inviter for a person.
func (s *Service) nameLocked(e *entry, card *contacts.Card) {
	e.PeerName = s.cfg.Name(e.Peer)
	if e.PeerName == e.Peer.String() {
		e.PeerName = card.Profile().DisplayName
	}
}

func (h handler) Responded(from peer.ID, resp invite.Response) invite.Ack {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.records[string(Sent)+"/"+resp.InvitationID]
	switch {
	case !ok:
		return invite.Ack{Status: invite.AckUnknown}
	case e.Peer != from:
		log.Debugw("response from a peer not party to the invitation", "invitation", e.ID, "peer", from)
		return invite.Ack{Status: invite.AckNotParty}
	case e.State.Answered():
		return invite.Ack{Status: invite.AckAnswered}
	}
	s.answeredLocked(e, resp)
	return invite.Ack{Status: invite.AckOK}
}

func (h handler) Cancelled(from peer.ID, id string) invite.Ack {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.records[string(Received)+"/"+id]
	switch {
	case !ok:
		return invite.Ack{Status: invite.AckUnknown}
	case e.Peer != from:
		log.Debugw("cancel from a peer not party to the invitation", "invitation", id, "peer", from)
		return invite.Ack{Status: invite.AckNotParty}
	case e.State.Answered():
		return invite.Ack{Status: invite.AckAnswered}
	}
	s.setLocked(e, Cancelled, invite.NoReason, stepNone)
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
	e, err := s.findLocked(id)
	if err != nil {
		return Record{}, err
	}
	if e.Direction != Received {
		return Record{}, ErrNotReceived
	}
	if e.State.Answered() {
		return Record{}, fmt.Errorf("%w (it is %s)", ErrAnswered, e.State)
	}
	app, ok := s.cfg.App(e.AppID)
	if st == Accepted && !ok {
		return Record{}, ErrNoApp
	}
	s.answerLocked(e, st, app, stepRespond)
	return e.Record.View(), nil
}

// answerLocked records an answer, queues it for the inviter unless it goes
// back another way (unacked is stepNone), and launches the application on
// acceptance.
func (s *Service) answerLocked(e *entry, st State, app App, unacked step) {
	s.setLocked(e, st, invite.NoReason, unacked)
	if unacked != stepNone {
		s.deliverLocked(e)
	}
	if st == Accepted && app.Launch != "" {
		if err := s.launch(&e.Record, app.Launch); err != nil {
			log.Warnw("launch application", "invitation", e.ID, "application", e.AppID, "error", err)
			return
		}
		e.Launched = true
		s.saveLocked(e)
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
