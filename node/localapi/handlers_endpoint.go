package localapi

import (
	"net/http"

	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

func (s *Server) scope() apitype.ScopeResponse {
	return apitype.ScopeResponse{Scope: scopeView(s.n.Scope())}
}

func (s *Server) getScope(*http.Request) (apitype.ScopeResponse, error) { return s.scope(), nil }

func (s *Server) signIn(r *http.Request) (apitype.ScopeResponse, error) {
	sc, err := decodeScope(r)
	if err != nil {
		return apitype.ScopeResponse{}, err
	}
	if sc == node.ScopeNone {
		return apitype.ScopeResponse{}, badValue(apitype.CodeBadScope, "sign in to nearme, internet or all")
	}
	err = s.n.SignIn(r.Context(), sc)
	return s.scope(), err
}

func (s *Server) signOut(r *http.Request) (apitype.ScopeResponse, error) {
	sc, err := decodeScope(r)
	if err != nil {
		return apitype.ScopeResponse{}, err
	}
	err = s.n.SignOut(r.Context(), sc)
	return s.scope(), err
}

func decodeScope(r *http.Request) (node.Scope, error) {
	var wire scopeWire
	if err := decode(r, &wire); err != nil {
		return 0, err
	}
	req, err := wire.request()
	if err != nil {
		return 0, err
	}
	return scopeArg(req.Scope)
}

func (s *Server) listNear(*http.Request) ([]apitype.PersonNear, error) {
	people, err := s.n.Near().List()
	if err != nil {
		return nil, err
	}
	out := make([]apitype.PersonNear, len(people))
	for i, p := range people {
		out[i] = apitype.PersonNear{Person: personView(p), Contact: s.n.Contacts().IsContact(p.Peer)}
		out[i].PersonID, out[i].Device, _ = s.n.DeviceOf(p.Peer)
	}
	return out, nil
}

func (s *Server) addNear(r *http.Request) (apitype.AddContactResponse, error) {
	var wire addNearWire
	if err := decode(r, &wire); err != nil {
		return apitype.AddContactResponse{}, err
	}
	req := wire.request()
	opts, err := addOptions(req.Nickname, req.Watch, req.WatcherPermission)
	if err != nil {
		return apitype.AddContactResponse{}, err
	}
	opts.Replace = req.Replace
	c, created, chk, err := s.n.AddNear(r.PathValue("peer"), opts)
	if err != nil {
		return apitype.AddContactResponse{}, err
	}
	return addResponse(c, created, chk, s.nickname), nil
}

func (s *Server) myEndpoint(*http.Request) (apitype.MyEndpoint, error) {
	p := s.n.Publish()
	snap := p.Snapshot()
	return apitype.MyEndpoint{
		Name:         snap.Name,
		Presence:     presenceView(snap.Presence),
		Scope:        scopeView(s.n.Scope()),
		Applications: mapSlice(p.Apps(), registeredAppView),
		Objects:      mapSlice(snap.Objects, objectView),
	}, nil
}

func (s *Server) setPresence(r *http.Request) (apitype.MyEndpoint, error) {
	var wire presenceWire
	if err := decode(r, &wire); err != nil {
		return apitype.MyEndpoint{}, err
	}
	p, err := presenceArg(wire.request())
	if err != nil {
		return apitype.MyEndpoint{}, err
	}
	if err := s.n.SetPresence(p); err != nil {
		return apitype.MyEndpoint{}, err
	}
	return s.myEndpoint(r)
}

func (s *Server) setName(r *http.Request) (apitype.MyEndpoint, error) {
	var req apitype.NameRequest
	if err := decode(r, &req); err != nil {
		return apitype.MyEndpoint{}, err
	}
	if err := s.n.SetEndpointName(req.Name); err != nil {
		return apitype.MyEndpoint{}, err
	}
	return s.myEndpoint(r)
}

func (s *Server) registerApp(r *http.Request) (apitype.RegisteredApp, error) {
	var req apitype.RegisteredApp
	if err := decode(r, &req); err != nil {
		return req, err
	}
	return req, s.n.Publish().RegisterApp(registeredAppArg(req))
}

func (s *Server) removeApp(r *http.Request) (empty, error) {
	return empty{}, s.n.Publish().RemoveApp(r.PathValue("id"))
}

func (s *Server) setObject(r *http.Request) (apitype.Object, error) {
	var req apitype.ObjectRequest
	if err := decode(r, &req); err != nil {
		return apitype.Object{}, err
	}
	o := endpoint.Object{ID: r.PathValue("id"), Data: req.Data}
	return objectView(o), s.n.Publish().SetObject(o)
}

func (s *Server) removeObject(r *http.Request) (empty, error) {
	return empty{}, s.n.Publish().RemoveObject(r.PathValue("id"))
}

func (s *Server) peerEndpoint(r *http.Request) (apitype.PeerEndpoint, error) {
	p, err := s.n.ResolvePeer(r.PathValue("peer"))
	if err != nil {
		return apitype.PeerEndpoint{}, err
	}
	e, err := s.n.EndpointData(r.Context(), p)
	if err != nil {
		return apitype.PeerEndpoint{}, err
	}
	return peerEndpointView(e), nil
}

func (s *Server) forgetPeerEndpoint(r *http.Request) (empty, error) {
	p, err := s.n.ResolvePeer(r.PathValue("peer"))
	if err != nil {
		return empty{}, err
	}
	return empty{}, s.n.ForgetEndpointData(p)
}

func (s *Server) watchPeer(r *http.Request) (apitype.PeerEndpoint, error) {
	p, err := s.n.ResolvePeer(r.PathValue("peer"))
	if err != nil {
		return apitype.PeerEndpoint{}, err
	}
	if err := s.n.WatchPeer(p); err != nil {
		return apitype.PeerEndpoint{}, err
	}
	e, _ := s.n.Watch().Get(p)
	return peerEndpointView(e), nil
}

func (s *Server) unwatchPeer(r *http.Request) (empty, error) {
	p, err := s.n.ResolvePeer(r.PathValue("peer"))
	if err != nil {
		return empty{}, err
	}
	return empty{}, s.n.UnwatchPeer(p)
}

func (s *Server) watching(*http.Request) ([]apitype.PeerEndpoint, error) {
	out := []apitype.PeerEndpoint{}
	for _, e := range s.n.Watch().List() {
		if e.Watching {
			out = append(out, peerEndpointView(e))
		}
	}
	return out, nil
}
