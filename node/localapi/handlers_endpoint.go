package localapi

import (
	"net/http"

	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

func (s *Server) getScope(*http.Request) (ScopeResponse, error) {
	return ScopeResponse{s.n.Scope()}, nil
}

func (s *Server) signIn(r *http.Request) (ScopeResponse, error) {
	req, err := decodeScope(r)
	if err != nil {
		return ScopeResponse{}, err
	}
	if req.Scope == node.ScopeNone {
		return ScopeResponse{}, badValue(CodeBadScope, "sign in to nearme, internet or all")
	}
	err = s.n.SignIn(r.Context(), req.Scope)
	return ScopeResponse{s.n.Scope()}, err
}

func (s *Server) signOut(r *http.Request) (ScopeResponse, error) {
	req, err := decodeScope(r)
	if err != nil {
		return ScopeResponse{}, err
	}
	err = s.n.SignOut(r.Context(), req.Scope)
	return ScopeResponse{s.n.Scope()}, err
}

func decodeScope(r *http.Request) (ScopeRequest, error) {
	var wire scopeWire
	if err := decode(r, &wire); err != nil {
		return ScopeRequest{}, err
	}
	return wire.request()
}

func (s *Server) listNear(*http.Request) ([]Person, error) {
	people, err := s.n.Near().List()
	if err != nil {
		return nil, err
	}
	out := make([]Person, len(people))
	for i, p := range people {
		out[i] = Person{Person: p, Contact: s.n.Contacts().IsContact(p.Peer)}
	}
	return out, nil
}

func (s *Server) addNear(r *http.Request) (AddContactResponse, error) {
	var wire addNearWire
	if err := decode(r, &wire); err != nil {
		return AddContactResponse{}, err
	}
	req := wire.request()
	c, created, chk, err := s.n.AddNear(r.PathValue("peer"), node.AddOptions{Nickname: req.Nickname, Watch: req.Watch, Permission: req.WatcherPermission})
	if err != nil {
		return AddContactResponse{}, err
	}
	return AddContactResponse{Contact: *c, Created: created, Card: cardView(chk, s.nickname)}, nil
}

func (s *Server) myEndpoint(*http.Request) (MyEndpoint, error) {
	p := s.n.Publish()
	snap := p.Snapshot()
	return MyEndpoint{Name: snap.Name, Presence: snap.Presence, Scope: s.n.Scope(), Applications: p.Apps(), Objects: snap.Objects}, nil
}

func (s *Server) setPresence(r *http.Request) (MyEndpoint, error) {
	var req endpoint.Presence
	if err := decode(r, &req); err != nil {
		return MyEndpoint{}, err
	}
	if err := s.n.SetPresence(req); err != nil {
		return MyEndpoint{}, err
	}
	return s.myEndpoint(r)
}

func (s *Server) setName(r *http.Request) (MyEndpoint, error) {
	var req NameRequest
	if err := decode(r, &req); err != nil {
		return MyEndpoint{}, err
	}
	if err := s.n.SetEndpointName(req.Name); err != nil {
		return MyEndpoint{}, err
	}
	return s.myEndpoint(r)
}

func (s *Server) registerApp(r *http.Request) (publish.RegisteredApp, error) {
	var req publish.RegisteredApp
	if err := decode(r, &req); err != nil {
		return req, err
	}
	return req, s.n.Publish().RegisterApp(req)
}

func (s *Server) removeApp(r *http.Request) (empty, error) {
	return empty{}, s.n.Publish().RemoveApp(r.PathValue("id"))
}

func (s *Server) setObject(r *http.Request) (endpoint.Object, error) {
	var req ObjectRequest
	if err := decode(r, &req); err != nil {
		return endpoint.Object{}, err
	}
	o := endpoint.Object{ID: r.PathValue("id"), Data: req.Data}
	return o, s.n.Publish().SetObject(o)
}

func (s *Server) removeObject(r *http.Request) (empty, error) {
	return empty{}, s.n.Publish().RemoveObject(r.PathValue("id"))
}

func (s *Server) peerEndpoint(r *http.Request) (PeerEndpoint, error) {
	p, err := s.n.ResolvePeer(r.PathValue("peer"))
	if err != nil {
		return PeerEndpoint{}, err
	}
	return s.n.EndpointData(r.Context(), p)
}

func (s *Server) watchPeer(r *http.Request) (PeerEndpoint, error) {
	p, err := s.n.ResolvePeer(r.PathValue("peer"))
	if err != nil {
		return PeerEndpoint{}, err
	}
	if err := s.n.WatchPeer(p); err != nil {
		return PeerEndpoint{}, err
	}
	e, _ := s.n.Watch().Get(p)
	return e, nil
}

func (s *Server) unwatchPeer(r *http.Request) (empty, error) {
	p, err := s.n.ResolvePeer(r.PathValue("peer"))
	if err != nil {
		return empty{}, err
	}
	return empty{}, s.n.UnwatchPeer(p)
}

func (s *Server) watching(*http.Request) ([]PeerEndpoint, error) {
	var out []PeerEndpoint
	for _, e := range s.n.Watch().List() {
		if e.Watching {
			out = append(out, e)
		}
	}
	if out == nil {
		out = []PeerEndpoint{}
	}
	return out, nil
}
