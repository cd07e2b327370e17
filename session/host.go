package session

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// State is the stage a session is in.
type State int

// States.
const (
	Forming State = iota
	Running
	Ended
)

func (s State) String() string {
	switch s {
	case Forming:
		return "forming"
	case Running:
		return "running"
	case Ended:
		return "ended"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	for st := Forming; st <= Ended; st++ {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("session: unknown state %q", b)
}

// Standing is where a peer stands with a session.
type Standing string

// Standings. Invited peers have not answered; Member is an accepted,
// current member; the rest are final.
const (
	Invited   Standing = "invited"
	Member    Standing = "member"
	Declined  Standing = "declined"
	Expired   Standing = "expired"
	Cancelled Standing = "cancelled"
	Failed    Standing = "failed" // the invitation could not be delivered
	Removed   Standing = "removed"
	Left      Standing = "left"
)

// Input is something that happens to a session on the host's side.
type Input int

// Inputs.
const (
	InInvite Input = iota
	InAnswer
	InCancelUnanswered
	InStart
	InRemove
	InLeave
	InEnd
)

func (i Input) String() string {
	return [...]string{"invite", "answer", "cancel-unanswered", "start", "remove", "leave", "end"}[i]
}

// Errors of the state machine.
var (
	ErrEnded      = errors.New("session: the session has ended")
	ErrNotForming = errors.New("session: the session has started already")
	ErrNotMember  = errors.New("session: that peer is not a member")
	ErrIsHost     = errors.New("session: the host cannot be invited, removed or leave; end the session instead")
	ErrNotInvited = errors.New("session: that peer has no open invitation to this session")
)

// Next is the session-level transition function: the state after input in
// state s, or an error when the input is not allowed there.
func Next(s State, in Input) (State, error) {
	switch {
	case s == Ended:
		return s, ErrEnded
	case in == InStart && s != Forming:
		return s, ErrNotForming
	case in == InStart:
		return Running, nil
	case in == InEnd:
		return Ended, nil
	}
	return s, nil // invite, answer, cancel, remove and leave keep the state
}

// Roster is the host's published account of a session at one version.
type Roster struct {
	Session string  `json:"session"`
	App     string  `json:"application_id"`
	Host    peer.ID `json:"host"`
	State   State   `json:"state"`
	Version uint64  `json:"version"`
	// Epoch numbers the session key; it changes when a member goes.
	Epoch uint32 `json:"epoch"`
	// Members are the current members, the host first.
	Members []peer.ID `json:"members"`
}

// IsMember reports whether p is a current member.
func (r Roster) IsMember(p peer.ID) bool { return slices.Contains(r.Members, p) }

// Effects are what the node must do after an input.
type Effects struct {
	// Roster is set when a new roster version must be published.
	Roster *Roster
	// Rekey is set when a new key for Roster.Epoch must be made and handed
	// to the members.
	Rekey bool
	// Cancel lists the invitations to cancel.
	Cancel []string
	// Invite lists the peers to invite.
	Invite []peer.ID
}

// Host is the host's state of one session. It is not safe for concurrent
// use; the node serialises calls.
type Host struct {
	id, app  string
	host     peer.ID
	state    State
	version  uint64
	epoch    uint32
	standing map[peer.ID]Standing
	invites  map[peer.ID]string // open invitation ID by peer
}

// NewHost starts a session in state Forming with the host as its only
// member.
func NewHost(id, app string, host peer.ID) *Host {
	return &Host{id: id, app: app, host: host, state: Forming, version: 1, epoch: 1,
		standing: map[peer.ID]Standing{host: Member}, invites: map[peer.ID]string{}}
}

// State returns the session's state.
func (h *Host) State() State { return h.state }

// Standing returns every peer's standing.
func (h *Host) Standing() map[peer.ID]Standing { return maps.Clone(h.standing) }

// Roster returns the current roster.
func (h *Host) Roster() Roster {
	r := Roster{Session: h.id, App: h.app, Host: h.host, State: h.state, Version: h.version, Epoch: h.epoch, Members: []peer.ID{h.host}}
	var others []peer.ID
	for p, st := range h.standing {
		if st == Member && p != h.host {
			others = append(others, p)
		}
	}
	slices.SortFunc(others, func(a, b peer.ID) int { return strings.Compare(string(a), string(b)) })
	r.Members = append(r.Members, others...)
	return r
}

// changed makes a new roster version; rekey starts a new key epoch too.
func (h *Host) changed(rekey bool) Effects {
	h.version++
	if rekey {
		h.epoch++
	}
	r := h.Roster()
	return Effects{Roster: &r, Rekey: rekey}
}

// Invite asks to invite peers (those already members or invited are
// skipped). The node sends the invitations and reports their IDs with
// Invited.
func (h *Host) Invite(peers []peer.ID) (Effects, error) {
	if _, err := Next(h.state, InInvite); err != nil {
		return Effects{}, err
	}
	var fx Effects
	for _, p := range peers {
		if p == h.host {
			return Effects{}, ErrIsHost
		}
		if st := h.standing[p]; st == Member || st == Invited {
			continue
		}
		fx.Invite = append(fx.Invite, p)
	}
	return fx, nil
}

// Invited records that p was sent invitation id.
func (h *Host) Invited(p peer.ID, id string) {
	h.standing[p] = Invited
	h.invites[p] = id
}

// Answer records the answer to p's invitation: Member when it accepted,
// else Declined, Expired, Cancelled or Failed. An acceptance makes a new
// roster version.
func (h *Host) Answer(p peer.ID, st Standing) (Effects, error) {
	if _, err := Next(h.state, InAnswer); err != nil {
		return Effects{}, err
	}
	if h.standing[p] != Invited {
		return Effects{}, ErrNotInvited
	}
	delete(h.invites, p)
	h.standing[p] = st
	if st == Member {
		return h.changed(false), nil
	}
	return Effects{}, nil
}

// CancelUnanswered lists the open invitations to cancel; their answers
// (Cancelled) come back through Answer.
func (h *Host) CancelUnanswered() (Effects, error) {
	if _, err := Next(h.state, InCancelUnanswered); err != nil {
		return Effects{}, err
	}
	var fx Effects
	for _, id := range h.invites {
		fx.Cancel = append(fx.Cancel, id)
	}
	slices.Sort(fx.Cancel)
	return fx, nil
}

// Start moves the session to Running.
func (h *Host) Start() (Effects, error) {
	st, err := Next(h.state, InStart)
	if err != nil {
		return Effects{}, err
	}
	h.state = st
	return h.changed(false), nil
}

// Remove takes p out of the session and changes the key.
func (h *Host) Remove(p peer.ID) (Effects, error) { return h.drop(p, InRemove, Removed) }

// Leave records that p left; the key changes too.
func (h *Host) Leave(p peer.ID) (Effects, error) { return h.drop(p, InLeave, Left) }

func (h *Host) drop(p peer.ID, in Input, st Standing) (Effects, error) {
	if _, err := Next(h.state, in); err != nil {
		return Effects{}, err
	}
	if p == h.host {
		return Effects{}, ErrIsHost
	}
	if h.standing[p] != Member {
		return Effects{}, ErrNotMember
	}
	h.standing[p] = st
	return h.changed(true), nil
}

// End ends the session; open invitations are cancelled.
func (h *Host) End() (Effects, error) {
	st, err := Next(h.state, InEnd)
	if err != nil {
		return Effects{}, err
	}
	cancel, _ := h.CancelUnanswered()
	h.state = st
	fx := h.changed(false)
	fx.Cancel = cancel.Cancel
	return fx, nil
}

// Snapshot is a host's state in a form that can be stored and restored.
// Its maps are keyed by peer IDs in text form (a peer.ID map key would be
// written to JSON as raw bytes).
type Snapshot struct {
	ID       string              `json:"id"`
	App      string              `json:"application_id"`
	Host     peer.ID             `json:"host"`
	State    State               `json:"state"`
	Version  uint64              `json:"version"`
	Epoch    uint32              `json:"epoch"`
	Standing map[string]Standing `json:"standing"`
	Invites  map[string]string   `json:"invites,omitempty"`
}

// Snapshot returns the host's state.
func (h *Host) Snapshot() Snapshot {
	return Snapshot{ID: h.id, App: h.app, Host: h.host, State: h.state, Version: h.version, Epoch: h.epoch,
		Standing: TextKeys(h.standing), Invites: TextKeys(h.invites)}
}

// RestoreHost rebuilds a host from a snapshot. Entries whose key is not a
// peer ID are dropped.
func RestoreHost(s Snapshot) *Host {
	return &Host{id: s.ID, app: s.App, host: s.Host, state: s.State, version: s.Version, epoch: s.Epoch,
		standing: PeerKeys(s.Standing), invites: PeerKeys(s.Invites)}
}

// TextKeys returns m with its peer ID keys in text form, for JSON.
func TextKeys[V any](m map[peer.ID]V) map[string]V {
	out := make(map[string]V, len(m))
	for p, v := range m {
		out[p.String()] = v
	}
	return out
}

// PeerKeys is the inverse of TextKeys; keys that are not peer IDs are
// dropped.
func PeerKeys[V any](m map[string]V) map[peer.ID]V {
	out := make(map[peer.ID]V, len(m))
	for k, v := range m {
		if p, err := peer.Decode(k); err == nil {
			out[p] = v
		}
	}
	return out
}
