package localapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/localapi/apitype"
)

type empty struct{}

var errEmptyCard = errors.New("localapi: the request carries no card")

func (s *Server) id(*http.Request) (apitype.Info, error) {
	info, err := s.n.Info()
	if err != nil {
		return apitype.Info{}, err
	}
	return infoView(info), nil
}

func (s *Server) card(*http.Request) (apitype.CardResponse, error) {
	c, err := s.n.MyCard()
	if err != nil {
		return apitype.CardResponse{}, err
	}
	return apitype.CardResponse{PeerID: c.PeerID(), Card: string(c.Marshal())}, nil
}

func (s *Server) setMe(r *http.Request) (apitype.Info, error) {
	var req apitype.MeRequest
	if err := decode(r, &req); err != nil {
		return apitype.Info{}, err
	}
	if req.DisplayName == nil && req.Email == nil {
		return apitype.Info{}, badRequest("give a display_name, an email, or both")
	}
	me, err := s.n.Contacts().Me()
	if err != nil {
		return apitype.Info{}, err
	}
	p := contacts.Profile{DisplayName: me.DisplayName, Email: me.Email}
	if req.DisplayName != nil {
		p.DisplayName = *req.DisplayName
	}
	if req.Email != nil {
		p.Email = *req.Email
	}
	if _, err := s.n.SetProfile(p); err != nil {
		return apitype.Info{}, err
	}
	return s.id(r)
}

func (s *Server) listContacts(*http.Request) ([]*apitype.Contact, error) {
	list, err := s.n.Contacts().List()
	if err != nil {
		return []*apitype.Contact{}, err
	}
	out := make([]*apitype.Contact, len(list))
	for i, c := range list {
		out[i] = contactPtrView(c)
	}
	return out, nil
}

func (s *Server) addContact(r *http.Request) (apitype.AddContactResponse, error) {
	var wire addContactWire
	if err := decode(r, &wire); err != nil {
		return apitype.AddContactResponse{}, err
	}
	req := wire.request()
	if req.Card == "" {
		return apitype.AddContactResponse{}, badRequest("%v", errEmptyCard)
	}
	opts, err := addOptions(req.Nickname, req.Watch, req.WatcherPermission)
	if err != nil {
		return apitype.AddContactResponse{}, err
	}
	opts.Replace = req.Replace
	c, created, chk, err := s.n.AddCard([]byte(req.Card), opts)
	if err != nil {
		return apitype.AddContactResponse{}, err
	}
	return addResponse(c, created, chk, s.nickname), nil
}

// resolve finds the contact named by the {peer} path value.
func (s *Server) resolve(r *http.Request) (*contacts.Contact, error) {
	return s.n.Contacts().Resolve(r.PathValue("peer"))
}

func (s *Server) showContact(r *http.Request) (apitype.ContactDetail, error) {
	c, err := s.resolve(r)
	if err != nil {
		return apitype.ContactDetail{}, err
	}
	eps, pres := s.n.ContactEndpoints(c)
	d := apitype.ContactDetail{Contact: contactView(c), Presence: presenceView(pres), Endpoints: endpointViews(eps)}
	chk, err := s.n.CheckCard(c.Card)
	if err != nil {
		// A stored card can expire; show the contact and say so.
		d.Card = apitype.CardView{PeerID: c.PeerID, Trust: apitype.TrustView{Reason: toError(err).Message}}
		return d, nil
	}
	d.Card = cardView(chk, s.nickname)
	return d, nil
}

func (s *Server) updateContact(r *http.Request) (*apitype.Contact, error) {
	var wire updateContactWire
	if err := decode(r, &wire); err != nil {
		return nil, err
	}
	req := wire.request()
	opts, err := addOptions(req.Nickname, req.Watch, req.WatcherPermission)
	if err != nil {
		return nil, err
	}
	c, err := s.resolve(r)
	if err != nil {
		return nil, err
	}
	c, err = s.n.UpdateContact(c.PeerID, opts)
	if err != nil {
		return nil, err
	}
	return contactPtrView(c), nil
}

func (s *Server) removeContact(r *http.Request) (empty, error) {
	c, err := s.resolve(r)
	if err != nil {
		return empty{}, err
	}
	return empty{}, s.n.Contacts().Remove(c.PeerID)
}

func (s *Server) exportContact(r *http.Request) (apitype.CardResponse, error) {
	c, err := s.resolve(r)
	if err != nil {
		return apitype.CardResponse{}, err
	}
	return apitype.CardResponse{PeerID: c.PeerID, Card: string(c.Card)}, nil
}

func (s *Server) checkCard(r *http.Request) (apitype.CardView, error) {
	var req apitype.CardRequest
	if err := decode(r, &req); err != nil {
		return apitype.CardView{}, err
	}
	chk, err := s.n.CheckCard([]byte(req.Card))
	if err != nil {
		return apitype.CardView{}, err
	}
	return cardView(chk, s.nickname), nil
}

func (s *Server) endorse(r *http.Request) (apitype.CardResponse, error) {
	var req apitype.EndorseRequest
	if err := decode(r, &req); err != nil {
		return apitype.CardResponse{}, err
	}
	var validity time.Duration
	if req.Validity != "" {
		var err error
		if validity, err = parseDuration("validity", req.Validity, apitype.CodeBadDuration, time.Second, maxValidity, "8760h"); err != nil {
			return apitype.CardResponse{}, err
		}
	}
	c, err := s.n.Endorse([]byte(req.Card), validity)
	if err != nil {
		return apitype.CardResponse{}, err
	}
	return apitype.CardResponse{PeerID: c.PeerID(), Card: string(c.Marshal())}, nil
}

// nickname names a peer for a person: its contact nickname, else its ID.
func (s *Server) nickname(id peer.ID) string {
	if c, err := s.n.Contacts().Get(id); err == nil {
		return c.Nickname
	}
	if id == s.n.Identity().ID() {
		return "me"
	}
	return id.String()
}

func (s *Server) ping(r *http.Request) (apitype.PingResponse, error) {
	var req apitype.PingRequest
	if err := decode(r, &req); err != nil {
		return apitype.PingResponse{}, err
	}
	if req.Count == 0 {
		req.Count = 3
	}
	if req.Count < 1 || req.Count > maxPingCount {
		return apitype.PingResponse{}, badValue(apitype.CodeBadCount, "count must be between 1 and %d", maxPingCount)
	}
	interval := 200 * time.Millisecond
	if req.Interval != "" {
		var err error
		if interval, err = parseDuration("interval", req.Interval, apitype.CodeBadDuration, 0, pingTimeout, "200ms"); err != nil {
			return apitype.PingResponse{}, err
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), pingTimeout)
	defer cancel()
	p, res, err := s.n.Ping(ctx, req.Target, req.Count, interval)
	if err != nil {
		return apitype.PingResponse{}, err
	}
	return apitype.PingResponse{Peer: p, Results: mapSlice(res, pingResultView)}, nil
}

// pingTimeout bounds a whole ping request; maxPingCount its round trips.
const (
	pingTimeout  = 60 * time.Second
	maxPingCount = 100
)

// maxValidity is the longest endorsement one can ask for: X.509 dates end
// in 9999, and a time.Duration at 292 years.
const maxValidity = 100 * 365 * 24 * time.Hour

func (s *Server) locate(r *http.Request) (apitype.LocateResponse, error) {
	p, err := s.n.ResolvePeer(r.PathValue("peer"))
	if err != nil {
		return apitype.LocateResponse{}, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	addrs, err := s.n.Locate(ctx, p)
	return apitype.LocateResponse{PeerID: p, Addrs: addrs}, err
}
