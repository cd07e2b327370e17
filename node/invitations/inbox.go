package invitations

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	trusted := s.cfg.Node.Trusted(card)
	stranger := !trusted && !s.cfg.Node.IsContact(from)
	src := sourceOf(addr)
	now := time.Now()

	launch := func() {}
	defer func() { launch() }() // after the lock is released
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
	switch s.policy {
	case Nobody:
		return decline(invite.NotAccepting)
	case Contacts:
		if !trusted {
			return decline(invite.NotAccepting)
		}
	}
	// Asked only now, so that what a flood is refused for above costs
	// little.
	app, ok := s.cfg.Node.App(inv.AppID)
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
		e.PeerName = nameOf(s.cfg.Node.Name(from), from, card)
		if err := s.addLocked(e, p); err != nil {
			log.Errorw("store invitation", "invitation", inv.ID, "error", err)
			return refuse(invite.NoReason)
		}
		launch = s.answerLocked(e, Accepted, app, stepNone)
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
	e.PeerName = nameOf(s.cfg.Node.Name(from), from, card)
	if err := s.addLocked(e, p); err != nil {
		log.Errorw("store invitation", "invitation", inv.ID, "error", err)
		return refuse(invite.NoReason)
	}
	s.in.charge(e)
	s.saveLocked(e)
	s.scheduleLocked(e)
	return invite.Ack{Status: invite.AckOK}
}

// nameOf names a received invitation's inviter for a person: as the node
// names from, else by the name on its card.
func nameOf(name string, from peer.ID, card *contacts.Card) string {
	if name == from.String() {
		return card.Profile().DisplayName
	}
	return name
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
	e, err := s.findLocked(id)
	if err != nil {
		s.mu.Unlock()
		return Record{}, err
	}
	if e.Direction != Received {
		s.mu.Unlock()
		return Record{}, ErrNotReceived
	}
	if e.State.Answered() {
		s.mu.Unlock()
		return Record{}, fmt.Errorf("%w (it is %s)", ErrAnswered, e.State)
	}
	app, ok := s.cfg.Node.App(e.AppID)
	if st == Accepted && !ok {
		s.mu.Unlock()
		return Record{}, ErrNoApp
	}
	launch := s.answerLocked(e, st, app, stepRespond)
	s.mu.Unlock()
	launch()
	s.mu.Lock()
	defer s.mu.Unlock()
	return e.Record.View(), nil
}

// answerLocked records an answer and queues it for the inviter unless it
// goes back another way (unacked is stepNone). On an acceptance it returns
// the launch of the application, for the caller to run once the lock is
// released (it forks a shell); otherwise a function that does nothing.
func (s *Service) answerLocked(e *entry, st State, app App, unacked step) (launch func()) {
	s.setLocked(e, st, invite.NoReason, unacked)
	if unacked != stepNone {
		s.deliverLocked(e)
	}
	if st != Accepted || app.Launch == "" {
		return func() {}
	}
	r, command := e.Record, app.Launch
	return func() { s.launchFor(r, command) }
}

// launchFor runs the application of accepted invitation r and records that
// it was launched. It takes the lock, and must be called without it.
func (s *Service) launchFor(r Record, command string) {
	if err := s.launch(&r, command); err != nil {
		log.Warnw("launch application", "invitation", r.ID, "application", r.AppID, "error", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.records[r.key()]; ok && !s.closed {
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

// Launched applications' logs are kept launchLogsKept at most, none older
// than launchLogsAge.
const (
	launchLogsKept = 100
	launchLogsAge  = 30 * 24 * time.Hour
)

// pruneLaunchLogs removes the launch logs of dir beyond the newest
// launchLogsKept and those older than launchLogsAge (by modification time:
// a log still written to stays).
func pruneLaunchLogs(dir string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type logFile struct {
		name string
		mod  time.Time
	}
	var logs []logFile
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && strings.HasSuffix(e.Name(), ".log") {
			logs = append(logs, logFile{e.Name(), info.ModTime()})
		}
	}
	slices.SortFunc(logs, func(a, b logFile) int { return b.mod.Compare(a.mod) })
	for i, l := range logs {
		if i >= launchLogsKept || now.Sub(l.mod) > launchLogsAge {
			os.Remove(filepath.Join(dir, l.name))
		}
	}
}

// launch runs an application's launch command, detached: its output goes
// to launch/ID.log in the data directory (see pruneLaunchLogs), and the
// daemon does not wait for it (startDetached, per system).
func (s *Service) launch(r *Record, command string) error {
	dir := filepath.Join(s.cfg.Home, "launch")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	pruneLaunchLogs(dir, time.Now())
	logPath := filepath.Join(dir, r.ID+".log")
	env := append(os.Environ(),
		EnvInvitation+"="+r.ID, EnvHome+"="+s.cfg.Home, EnvApp+"="+r.AppID,
		EnvInviter+"="+r.Peer.String(), EnvSession+"="+r.SessionID)
	if err := startDetached(command, logPath, s.cfg.Home, env); err != nil {
		return err
	}
	log.Infow("launched application", "invitation", r.ID, "application", r.AppID, "log", logPath)
	return nil
}
