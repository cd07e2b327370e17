package session

import (
	"errors"
	"maps"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Errors of the member's side.
var (
	ErrNotJoined  = errors.New("session: this node is not a member of the session (yet)")
	ErrNotRunning = errors.New("session: the session has not started")
)

// Refusal is why a host refused a member's join.
type Refusal int

// Refusals.
const (
	// RefusedNotMember: the host knows the session but the member is not
	// (or no longer) in it, or the host knows no such session for it.
	RefusedNotMember Refusal = iota
	// RefusedEnded: the session has ended.
	RefusedEnded
)

// ParticipantEffects are what the node must do after an input to a
// Participant.
type ParticipantEffects struct {
	// Changed: the member's state changed; store it and tell the
	// application.
	Changed bool
	// Join: ask the host for the roster and keys (again).
	Join bool
	// Follow: be on the session's topic (the member holds the topic tag
	// and keys).
	Follow bool
	// Replay: deliver the messages that were waiting for a key.
	Replay bool
	// Unfollow: leave the session's topic, once what was just published
	// has gone out.
	Unfollow bool
	// TellHost: tell the host that the member leaves.
	TellHost bool
}

// Participant is a member's side of one session that another peer hosts:
// where it stands (Invited until it first joins, then Member, or Removed, Left,
// Cancelled), whether it has joined (it then holds a roster that names it,
// keys and the topic), and the latest roster the host gave it. Each input
// returns the effects the node must carry out. It is not safe for
// concurrent use; the node serialises calls.
type Participant struct {
	id       string
	host, me peer.ID
	standing Standing
	joined   bool
	roster   Roster
	keys     map[uint32]bool // epochs whose key the member holds
}

// NewParticipant is this node's side of session id hosted by host, after it
// accepted its invitation: Invited, not joined. Call Resume to start.
func NewParticipant(id string, host, me peer.ID) *Participant {
	return &Participant{id: id, host: host, me: me, standing: Invited, keys: map[uint32]bool{}}
}

// ParticipantState is a Participant in a form that can be stored and
// restored.
type ParticipantState struct {
	Roster   Roster
	Standing Standing
	Joined   bool
	// Epochs are the epochs whose keys the member holds.
	Epochs []uint32
}

// RestoreParticipant rebuilds a Participant from its stored state.
func RestoreParticipant(id string, host, me peer.ID, st ParticipantState) *Participant {
	m := NewParticipant(id, host, me)
	m.roster, m.standing, m.joined = st.Roster, st.Standing, st.Joined
	if m.standing == "" {
		m.standing = Invited
	}
	for _, e := range st.Epochs {
		m.keys[e] = true
	}
	return m
}

// State returns the member's state for storing.
func (m *Participant) State() ParticipantState {
	return ParticipantState{Roster: m.roster, Standing: m.standing, Joined: m.joined, Epochs: slices.Sorted(maps.Keys(m.keys))}
}

// Standing is where this node stands with the session.
func (m *Participant) Standing() Standing { return m.standing }

// Joined reports whether the member has joined (and not been removed).
func (m *Participant) Joined() bool { return m.joined }

// Roster is the latest roster the host gave.
func (m *Participant) Roster() Roster { return m.roster }

// HasKey reports whether the member holds the key of epoch.
func (m *Participant) HasKey(epoch uint32) bool { return m.keys[epoch] }

// over reports whether nothing more is to be done with the session: it
// ended, or this node is out of it.
func (m *Participant) over() bool {
	return m.roster.State == Ended || (m.standing != Invited && m.standing != Member)
}

// Resume is where a member starts, new or restored: one that may still be
// (or become) a member asks the host to let it in.
func (m *Participant) Resume() ParticipantEffects {
	if m.over() {
		return ParticipantEffects{}
	}
	return ParticipantEffects{Join: true}
}

// Admitted takes the host's answer to a join: roster r (of this session
// and host; the node checks that) and the keys of epochs. A roster that does
// not name this node is ErrNotMember (the node asks again). Once the
// member is out of the session, an answer changes nothing.
func (m *Participant) Admitted(r Roster, epochs []uint32) (ParticipantEffects, error) {
	if m.over() {
		return ParticipantEffects{}, nil
	}
	if !r.IsMember(m.me) {
		return ParticipantEffects{}, ErrNotMember
	}
	if r.Version >= m.roster.Version {
		m.roster = r
	}
	for _, e := range epochs {
		m.keys[e] = true
	}
	m.joined, m.standing = true, Member
	return ParticipantEffects{Changed: true, Follow: true, Replay: true}, nil
}

// Refused takes the host's refusal of a join. A member that was in is
// Removed; one that never got in, Cancelled; an ended session ends here.
func (m *Participant) Refused(why Refusal) ParticipantEffects {
	if m.over() {
		return ParticipantEffects{}
	}
	if why == RefusedEnded {
		m.roster.State = Ended
		return ParticipantEffects{Changed: true, Unfollow: true}
	}
	if m.standing == Member {
		m.standing = Removed
	} else {
		m.standing = Cancelled
	}
	return ParticipantEffects{Changed: true, Unfollow: true}
}

// RosterSeen takes a roster the host published (checked by the node). An
// older one than the member holds changes nothing; one that ends the
// session, or that no longer names a member that had joined, ends it
// here; one of an epoch whose key the member lacks makes it ask.
func (m *Participant) RosterSeen(r Roster) ParticipantEffects {
	if r.Version <= m.roster.Version {
		return ParticipantEffects{}
	}
	m.roster = r
	switch {
	case r.State == Ended:
		return ParticipantEffects{Changed: true, Unfollow: true}
	case !r.IsMember(m.me) && m.joined:
		if m.standing == Member {
			m.standing = Removed
		}
		return ParticipantEffects{Changed: true, Unfollow: true}
	}
	return ParticipantEffects{Changed: true, Join: !m.keys[r.Epoch] && !m.over()}
}

// HeartbeatSeen takes the roster version of a host's heartbeat: a newer
// one than the member holds means it missed a roster.
func (m *Participant) HeartbeatSeen(version uint64) ParticipantEffects {
	return ParticipantEffects{Join: m.joined && version > m.roster.Version && !m.over()}
}

// KeyMissing is told that the key of epoch is needed (the host or a member
// sealed something with it, or the member is about to) and the member
// lacks it: the roster's epoch or a newer one makes it ask; the host hands
// out no older keys.
func (m *Participant) KeyMissing(epoch uint32) ParticipantEffects {
	return ParticipantEffects{Join: epoch >= m.roster.Epoch && !m.keys[epoch] && !m.over()}
}

// Leave is the user leaving the session. Leaving twice does nothing more.
func (m *Participant) Leave() ParticipantEffects {
	if m.standing == Left {
		return ParticipantEffects{}
	}
	m.standing = Left
	return ParticipantEffects{Changed: true, TellHost: true, Unfollow: true}
}

// Sendable says whether the member may send now: ErrEnded, ErrNotJoined,
// ErrNotRunning, or nil.
func (m *Participant) Sendable() error {
	switch {
	case m.roster.State == Ended:
		return ErrEnded
	case !m.joined || m.standing != Member:
		return ErrNotJoined
	case m.roster.State != Running:
		return ErrNotRunning
	}
	return nil
}
