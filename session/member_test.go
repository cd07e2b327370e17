package session

import (
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// memberRoster is a roster of session "s1" hosted by host, at version and
// epoch, with members after the host.
func memberRoster(st State, version uint64, epoch uint32, members ...peer.ID) Roster {
	return Roster{Session: "s1", App: "chat", Host: host, State: st, Version: version, Epoch: epoch, Members: append([]peer.ID{host}, members...)}
}

// TestMember: each input of a member's side, from a named state, with the
// state and effects it leads to. Node a is the member.
func TestMember(t *testing.T) {
	// States to start from.
	invited := func() *Participant { return NewParticipant("s1", host, a) }
	joined := func() *Participant {
		return RestoreParticipant("s1", host, a, ParticipantState{Roster: memberRoster(Running, 3, 1, a, b), Standing: Member, Joined: true, Epochs: []uint32{1}})
	}
	forming := func() *Participant {
		return RestoreParticipant("s1", host, a, ParticipantState{Roster: memberRoster(Forming, 2, 1, a), Standing: Member, Joined: true, Epochs: []uint32{1}})
	}
	restored := func(st Standing, state State) func() *Participant {
		return func() *Participant {
			return RestoreParticipant("s1", host, a, ParticipantState{Roster: memberRoster(state, 3, 1, a), Standing: st, Joined: true, Epochs: []uint32{1}})
		}
	}
	type want struct {
		standing Standing
		joined   bool
		version  uint64
		fx       ParticipantEffects
		err      error
		send     error
	}
	cases := []struct {
		name  string
		from  func() *Participant
		input func(m *Participant) (ParticipantEffects, error)
		want  want
	}{
		{"a new member asks to join", invited, func(m *Participant) (ParticipantEffects, error) { return m.Resume(), nil },
			want{standing: Invited, fx: ParticipantEffects{Join: true}, send: ErrNotJoined}},
		{"admitted", invited, func(m *Participant) (ParticipantEffects, error) {
			return m.Admitted(memberRoster(Running, 2, 1, a), []uint32{1})
		},
			want{standing: Member, joined: true, version: 2, fx: ParticipantEffects{Changed: true, Follow: true, Replay: true}}},
		{"admitted to a session not started", invited, func(m *Participant) (ParticipantEffects, error) {
			return m.Admitted(memberRoster(Forming, 2, 1, a), []uint32{1})
		},
			want{standing: Member, joined: true, version: 2, fx: ParticipantEffects{Changed: true, Follow: true, Replay: true}, send: ErrNotRunning}},
		{"an answer whose roster leaves the member out", invited, func(m *Participant) (ParticipantEffects, error) {
			return m.Admitted(memberRoster(Running, 2, 1, b), nil)
		},
			want{standing: Invited, err: ErrNotMember, send: ErrNotJoined}},
		{"an older roster in a join answer keeps the newer", joined, func(m *Participant) (ParticipantEffects, error) {
			return m.Admitted(memberRoster(Running, 2, 1, a), []uint32{1})
		}, want{standing: Member, joined: true, version: 3, fx: ParticipantEffects{Changed: true, Follow: true, Replay: true}}},
		{"refused before joining", invited, func(m *Participant) (ParticipantEffects, error) { return m.Refused(RefusedNotMember), nil },
			want{standing: Cancelled, fx: ParticipantEffects{Changed: true, Unfollow: true}, send: ErrNotJoined}},
		{"refused after joining", joined, func(m *Participant) (ParticipantEffects, error) { return m.Refused(RefusedNotMember), nil },
			want{standing: Removed, joined: true, version: 3, fx: ParticipantEffects{Changed: true, Unfollow: true}, send: ErrNotJoined}},
		{"told the session ended", joined, func(m *Participant) (ParticipantEffects, error) { return m.Refused(RefusedEnded), nil },
			want{standing: Member, joined: true, version: 3, fx: ParticipantEffects{Changed: true, Unfollow: true}, send: ErrEnded}},
		{"a newer roster of the same epoch", joined, func(m *Participant) (ParticipantEffects, error) {
			return m.RosterSeen(memberRoster(Running, 4, 1, a, b, c)), nil
		},
			want{standing: Member, joined: true, version: 4, fx: ParticipantEffects{Changed: true}}},
		{"a newer roster of a new epoch", joined, func(m *Participant) (ParticipantEffects, error) {
			return m.RosterSeen(memberRoster(Running, 4, 2, a)), nil
		},
			want{standing: Member, joined: true, version: 4, fx: ParticipantEffects{Changed: true, Join: true}}},
		{"an old roster", joined, func(m *Participant) (ParticipantEffects, error) {
			return m.RosterSeen(memberRoster(Running, 3, 2, a)), nil
		},
			want{standing: Member, joined: true, version: 3}},
		{"the session starts", forming, func(m *Participant) (ParticipantEffects, error) {
			return m.RosterSeen(memberRoster(Running, 3, 1, a)), nil
		},
			want{standing: Member, joined: true, version: 3, fx: ParticipantEffects{Changed: true}}},
		{"removed", joined, func(m *Participant) (ParticipantEffects, error) {
			return m.RosterSeen(memberRoster(Running, 4, 2, b)), nil
		},
			want{standing: Removed, joined: true, version: 4, fx: ParticipantEffects{Changed: true, Unfollow: true}, send: ErrNotJoined}},
		{"the host ends the session", joined, func(m *Participant) (ParticipantEffects, error) {
			return m.RosterSeen(memberRoster(Ended, 4, 1, a, b)), nil
		},
			want{standing: Member, joined: true, version: 4, fx: ParticipantEffects{Changed: true, Unfollow: true}, send: ErrEnded}},
		{"a heartbeat of a newer roster", joined, func(m *Participant) (ParticipantEffects, error) { return m.HeartbeatSeen(5), nil },
			want{standing: Member, joined: true, version: 3, fx: ParticipantEffects{Join: true}}},
		{"a heartbeat of this roster", joined, func(m *Participant) (ParticipantEffects, error) { return m.HeartbeatSeen(3), nil },
			want{standing: Member, joined: true, version: 3}},
		{"a heartbeat before joining", invited, func(m *Participant) (ParticipantEffects, error) { return m.HeartbeatSeen(9), nil },
			want{standing: Invited, send: ErrNotJoined}},
		{"a key of a new epoch is missing", joined, func(m *Participant) (ParticipantEffects, error) { return m.KeyMissing(2), nil },
			want{standing: Member, joined: true, version: 3, fx: ParticipantEffects{Join: true}}},
		{"a key it holds is needed", joined, func(m *Participant) (ParticipantEffects, error) { return m.KeyMissing(1), nil },
			want{standing: Member, joined: true, version: 3}},
		{"a key of an old epoch is missing", restored(Member, Running), func(m *Participant) (ParticipantEffects, error) {
			m.RosterSeen(memberRoster(Running, 4, 3, a))
			return m.KeyMissing(2), nil
		}, want{standing: Member, joined: true, version: 4}},
		{"the key of the roster's epoch is missing", restored(Member, Running), func(m *Participant) (ParticipantEffects, error) {
			m.RosterSeen(memberRoster(Running, 4, 3, a))
			return m.KeyMissing(3), nil
		}, want{standing: Member, joined: true, version: 4, fx: ParticipantEffects{Join: true}}},
		{"leaves", joined, func(m *Participant) (ParticipantEffects, error) { return m.Leave(), nil },
			want{standing: Left, joined: true, version: 3, fx: ParticipantEffects{Changed: true, TellHost: true, Unfollow: true}, send: ErrNotJoined}},
		{"leaves twice", restored(Left, Running), func(m *Participant) (ParticipantEffects, error) { return m.Leave(), nil },
			want{standing: Left, joined: true, version: 3, send: ErrNotJoined}},
		{"a join answer after leaving", restored(Left, Running), func(m *Participant) (ParticipantEffects, error) {
			return m.Admitted(memberRoster(Running, 4, 1, a), []uint32{1})
		}, want{standing: Left, joined: true, version: 3, send: ErrNotJoined}},
		{"a refusal after leaving", restored(Left, Running), func(m *Participant) (ParticipantEffects, error) { return m.Refused(RefusedNotMember), nil },
			want{standing: Left, joined: true, version: 3, send: ErrNotJoined}},
		{"a removed member restarts", restored(Removed, Running), func(m *Participant) (ParticipantEffects, error) { return m.Resume(), nil },
			want{standing: Removed, joined: true, version: 3, send: ErrNotJoined}},
		{"a member restarts", restored(Member, Running), func(m *Participant) (ParticipantEffects, error) { return m.Resume(), nil },
			want{standing: Member, joined: true, version: 3, fx: ParticipantEffects{Join: true}}},
		{"an ended session restarts", restored(Member, Ended), func(m *Participant) (ParticipantEffects, error) { return m.Resume(), nil },
			want{standing: Member, joined: true, version: 3, send: ErrEnded}},
		{"a heartbeat after the end", restored(Member, Ended), func(m *Participant) (ParticipantEffects, error) { return m.HeartbeatSeen(9), nil },
			want{standing: Member, joined: true, version: 3, send: ErrEnded}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.from()
			fx, err := tc.input(m)
			if !errors.Is(err, tc.want.err) || (tc.want.err == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.want.err)
			}
			if fx != tc.want.fx {
				t.Errorf("effects %+v, want %+v", fx, tc.want.fx)
			}
			if m.Standing() != tc.want.standing || m.Joined() != tc.want.joined || m.Roster().Version != tc.want.version {
				t.Errorf("standing %s, joined %v, version %d; want %s, %v, %d", m.Standing(), m.Joined(), m.Roster().Version,
					tc.want.standing, tc.want.joined, tc.want.version)
			}
			if err := m.Sendable(); !errors.Is(err, tc.want.send) || (tc.want.send == nil && err != nil) {
				t.Errorf("Sendable = %v, want %v", err, tc.want.send)
			}
			// What is stored comes back the same.
			back := RestoreParticipant("s1", host, a, m.State())
			if back.Standing() != m.Standing() || back.Joined() != m.Joined() || back.Roster().Version != m.Roster().Version ||
				back.HasKey(1) != m.HasKey(1) {
				t.Errorf("restored as %+v", back.State())
			}
		})
	}
}

// TestMemberKeys: keys handed over with an admission stop the member from
// asking for them again.
func TestMemberKeys(t *testing.T) {
	m := NewParticipant("s1", host, a)
	m.Admitted(memberRoster(Running, 2, 1, a), []uint32{1})
	if fx := m.RosterSeen(memberRoster(Running, 3, 2, a)); !fx.Join {
		t.Fatalf("a new epoch without its key: %+v", fx)
	}
	m.Admitted(memberRoster(Running, 3, 2, a), []uint32{1, 2})
	if !m.HasKey(2) || m.KeyMissing(2).Join {
		t.Fatal("asks again for a key it holds")
	}
}
