package localapi

import (
	"context"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/node"
)

type empty struct{}

func (s *Server) id(*http.Request) (Info, error) { return s.n.Info() }

func (s *Server) card(*http.Request) (CardResponse, error) {
	c, err := s.n.MyCard()
	if err != nil {
		return CardResponse{}, err
	}
	return CardResponse{PeerID: c.PeerID(), Card: string(c.Marshal())}, nil
}

func (s *Server) listContacts(*http.Request) ([]*Contact, error) {
	list, err := s.n.Contacts().List()
	if list == nil {
		list = []*Contact{}
	}
	return list, err
}

func (s *Server) addContact(r *http.Request) (AddContactResponse, error) {
	var wire addContactWire
	if err := decode(r, &wire); err != nil {
		return AddContactResponse{}, err
	}
	req := wire.request()
	if req.Card == "" {
		return AddContactResponse{}, badRequest("%v", errEmptyCard)
	}
	c, created, chk, err := s.n.AddCard([]byte(req.Card), node.AddOptions{Nickname: req.Nickname, Watch: req.Watch, Permission: req.WatcherPermission})
	if err != nil {
		return AddContactResponse{}, err
	}
	return AddContactResponse{Contact: *c, Created: created, Card: cardView(chk, s.nickname)}, nil
}

// resolve finds the contact named by the {peer} path value.
func (s *Server) resolve(r *http.Request) (*Contact, error) {
	return s.n.Contacts().Resolve(r.PathValue("peer"))
}

func (s *Server) showContact(r *http.Request) (ContactDetail, error) {
	c, err := s.resolve(r)
	if err != nil {
		return ContactDetail{}, err
	}
	chk, err := s.n.CheckCard(c.Card)
	if err != nil {
		// A stored card can expire; show the contact and say so.
		return ContactDetail{Contact: *c, Card: CardView{PeerID: c.PeerID, Trust: TrustView{Reason: toError(err).Message}}}, nil
	}
	return ContactDetail{Contact: *c, Card: cardView(chk, s.nickname)}, nil
}

func (s *Server) updateContact(r *http.Request) (*Contact, error) {
	var wire updateContactWire
	if err := decode(r, &wire); err != nil {
		return nil, err
	}
	req := wire.request()
	c, err := s.resolve(r)
	if err != nil {
		return nil, err
	}
	return s.n.UpdateContact(c.PeerID, node.AddOptions{Nickname: req.Nickname, Watch: req.Watch, Permission: req.WatcherPermission})
}

func (s *Server) removeContact(r *http.Request) (empty, error) {
	c, err := s.resolve(r)
	if err != nil {
		return empty{}, err
	}
	return empty{}, s.n.Contacts().Remove(c.PeerID)
}

func (s *Server) exportContact(r *http.Request) (CardResponse, error) {
	c, err := s.resolve(r)
	if err != nil {
		return CardResponse{}, err
	}
	return CardResponse{PeerID: c.PeerID, Card: string(c.Card)}, nil
}

func (s *Server) checkCard(r *http.Request) (CardView, error) {
	var req CardRequest
	if err := decode(r, &req); err != nil {
		return CardView{}, err
	}
	chk, err := s.n.CheckCard([]byte(req.Card))
	if err != nil {
		return CardView{}, err
	}
	return cardView(chk, s.nickname), nil
}

func (s *Server) endorse(r *http.Request) (CardResponse, error) {
	var req EndorseRequest
	if err := decode(r, &req); err != nil {
		return CardResponse{}, err
	}
	var validity time.Duration
	if req.Validity != "" {
		var err error
		if validity, err = parseDuration("validity", req.Validity, CodeBadDuration, time.Second, maxValidity, "8760h"); err != nil {
			return CardResponse{}, err
		}
	}
	c, err := s.n.Endorse([]byte(req.Card), validity)
	if err != nil {
		return CardResponse{}, err
	}
	return CardResponse{PeerID: c.PeerID(), Card: string(c.Marshal())}, nil
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

func (s *Server) ping(r *http.Request) (PingResponse, error) {
	var req PingRequest
	if err := decode(r, &req); err != nil {
		return PingResponse{}, err
	}
	if req.Count == 0 {
		req.Count = 3
	}
	if req.Count < 1 || req.Count > maxPingCount {
		return PingResponse{}, badValue(CodeBadCount, "count must be between 1 and %d", maxPingCount)
	}
	interval := 200 * time.Millisecond
	if req.Interval != "" {
		var err error
		if interval, err = parseDuration("interval", req.Interval, CodeBadDuration, 0, pingTimeout, "200ms"); err != nil {
			return PingResponse{}, err
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), pingTimeout)
	defer cancel()
	p, res, err := s.n.Ping(ctx, req.Target, req.Count, interval)
	if err != nil {
		return PingResponse{}, err
	}
	return PingResponse{Peer: p, Results: res}, nil
}

// pingTimeout bounds a whole ping request; maxPingCount its round trips.
const (
	pingTimeout  = 60 * time.Second
	maxPingCount = 100
)

// maxValidity is the longest endorsement one can ask for: X.509 dates end
// in 9999, and a time.Duration at 292 years.
const maxValidity = 100 * 365 * 24 * time.Hour

// LocateResponse is the answer to POST /v1/contacts/{peer}/locate.
type LocateResponse struct {
	PeerID peer.ID        `json:"peer_id"`
	Addrs  []ma.Multiaddr `json:"addrs"`
}

func (s *Server) locate(r *http.Request) (LocateResponse, error) {
	p, err := s.n.ResolvePeer(r.PathValue("peer"))
	if err != nil {
		return LocateResponse{}, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	addrs, err := s.n.Locate(ctx, p)
	return LocateResponse{PeerID: p, Addrs: addrs}, err
}
