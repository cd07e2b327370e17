package localapi

import (
	"net/http"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// WebPage is the web page that the daemon serves beside the API (package
// node/web), as GET /v1/web and POST /v1/web/token see it. Its methods are
// called from the API's handlers, concurrently.
type WebPage interface {
	// Page says where the page is served and what opens it.
	Page() apitype.WebPage
	// RotateToken replaces the page's token, so that every browser that
	// opened the page with the old one must open it again.
	RotateToken() (apitype.WebPage, error)
}

// SetWebPage tells the server of the web page the daemon serves, for
// GET /v1/web and POST /v1/web/token; nil (the default) means none. It may
// be called while the server serves.
func (s *Server) SetWebPage(p WebPage) {
	s.webMu.Lock()
	defer s.webMu.Unlock()
	s.web = p
}

func (s *Server) webPage() WebPage {
	s.webMu.Lock()
	defer s.webMu.Unlock()
	return s.web
}

// Handler returns the handler that serves the API on the socket, for the
// web page's server to pass the page's /v1/ requests to: the same routes,
// events and error bodies.
func (s *Server) Handler() http.Handler { return s.h }

func (s *Server) getWebPage(*http.Request) (apitype.WebPage, error) {
	if p := s.webPage(); p != nil {
		return p.Page(), nil
	}
	return apitype.WebPage{}, nil
}

func (s *Server) rotateWebToken(*http.Request) (apitype.WebPage, error) {
	p := s.webPage()
	if p == nil {
		return apitype.WebPage{}, &apitype.Error{Status: http.StatusConflict, Code: apitype.CodeNoWebPage,
			Message: "The daemon serves no web page; start it without --web off."}
	}
	return p.RotateToken()
}
