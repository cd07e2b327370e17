package sessions

import (
	"github.com/libp2p/go-libp2p/core/peer"

	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

// toWire and fromWire convert rosters between the session logic and the
// protocol (whose states have the same numbers).
func toWire(r session.Roster) psession.Roster {
	return psession.Roster{Session: r.Session, App: r.App, Host: r.Host, State: psession.RosterState(r.State), Version: r.Version,
		Epoch: r.Epoch, Members: r.Members}
}

func fromWire(r psession.Roster) session.Roster {
	return session.Roster{Session: r.Session, App: r.App, Host: r.Host, State: session.State(r.State), Version: r.Version,
		Epoch: r.Epoch, Members: r.Members}
}

// validRoster reports whether r is a roster of session id hosted by host
// (see psession.Roster.Valid).
func validRoster(r session.Roster, id string, host peer.ID) bool {
	w := toWire(r)
	return w.Valid(id, host)
}

// rosterMessage is the topic message that publishes r.
func rosterMessage(r session.Roster) psession.TopicMessage {
	w := toWire(r)
	return psession.TopicMessage{Roster: &w}
}

// dataMessage is the topic message that carries d.
func dataMessage(d *psession.Data) psession.TopicMessage { return psession.TopicMessage{Data: d} }
