// Package session is the logic of a collaboration session, free of the
// network: the host's state machine (forming, running, ended), the members'
// standing, the roster the host publishes, and the per-sender ordering that
// delivers every member's messages in order and says which are missing.
//
// A session is host-owned. The host creates it for an application
// (Forming), invites peers and tallies their answers, may cancel the
// unanswered, starts it (Running) with those who accepted, may invite more
// and remove members while it runs, and ends it (Ended). Members join when
// they accept, and may leave. Each change of who is in the session makes a
// new roster version; removing or losing a member also starts a new key
// epoch, so that the one who left cannot read what follows.
//
// Host applies the host's inputs and returns the effects the node must
// carry out (publish the roster, change the key, cancel invitations).
// Participant is the other side: a member that accepted its invitation
// asks the host to let it in (Admitted or Refused), follows the rosters
// and heartbeats the host publishes, notices a key epoch it lacks, is
// removed or leaves; its effects say when to ask the host again, follow or
// leave the topic, and replay what waited for a key. Order puts the
// messages of each sender in sequence. All three are pure logic: no I/O,
// no clock, no goroutines.
package session
