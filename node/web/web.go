// Package web serves the node's web page: People Near Me as something a
// person looks at. The page is plain HTML, CSS and ES modules embedded in
// the binary (no CDN, no build step); it is a client of the local API and
// of nothing else: the server passes its /v1/ requests to the handler that
// serves the API on the unix socket (localapi.Server.Handler), events
// included.
//
// The page is served on a loopback address only, and only to a browser
// that holds its token:
//
//   - The token (32 random bytes, base64url) is kept in the data directory
//     (TokenFile, mode 0600), so it is per home and survives restarts;
//     RotateToken replaces it. `peercollab web` prints the address with the
//     token; opening it once exchanges the token for a cookie and takes the
//     token out of the address.
//   - The cookie is HttpOnly and SameSite=Strict, lasts until the browser
//     closes, and is an HMAC of the token: it works across restarts and
//     dies with the token. The page's scripts hold no secret at all.
//   - Every request must name this server in its Host header (127.0.0.1,
//     [::1] or localhost, with the port), so that a DNS name rebound to
//     127.0.0.1 gets nothing; a request with an Origin header must come
//     from the page's own origin, and one a browser marks as coming from
//     another site (Sec-Fetch-Site cross-site or same-site: another port of
//     127.0.0.1 is the same site) is refused, except the navigation that
//     brings the token, which returns no data. No CORS header is ever sent.
//   - Without the cookie, nothing is served but a short page that says how
//     to open the page (401), and the API answers 401. The page cannot read
//     or rotate its token (/v1/web is refused).
//   - Every answer forbids framing and sniffing and sends no referrer; the
//     page's content security policy allows its own scripts and styles
//     only.
package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

var log = logging.Logger("peercollab/web")

// DefaultPort is the loopback port the daemon serves the page on when it
// is free; otherwise the next free one of its series, then any free port
// (see ListenDefault).
const DefaultPort = 4738

// The page's ports on default settings, as the node's (4737, 4747, ...):
// DefaultPort, then every portStep above it, portTries in all (4738, 4748,
// ... 4808), so that the pages of one machine's daemons have addresses one
// can guess, each one above its node's port.
const (
	portStep  = 10
	portTries = 8
)

// Timeouts of the page's connections, those of the local API's socket: a
// request's header must arrive within headerTimeout and the whole request
// within bodyTimeout (the event stream lifts that deadline), and an idle
// connection is closed after idleTimeout.
const (
	headerTimeout  = 5 * time.Second
	bodyTimeout    = 10 * time.Second
	idleTimeout    = 2 * time.Minute
	maxHeaderBytes = 64 << 10
	// closeTimeout bounds how long Close waits for requests to end.
	closeTimeout = 2 * time.Second
)

// ErrNotLoopback is the error of an address that is not on loopback.
var ErrNotLoopback = errors.New("the web page is served on a loopback address only (127.0.0.1, ::1 or localhost)")

// ParseAddr checks that addr is HOST:PORT with HOST a loopback address or
// localhost, and returns it with localhost as 127.0.0.1.
func ParseAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("web address %q is not HOST:PORT (such as 127.0.0.1:%d)", addr, DefaultPort)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("web address %q has no port number", addr)
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return "", fmt.Errorf("web address %q: %w", addr, ErrNotLoopback)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// Listen listens on addr, a loopback HOST:PORT (see ParseAddr).
func Listen(addr string) (net.Listener, error) {
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", a)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return l, nil
}

// ListenDefault listens on the first free port of 127.0.0.1 among
// DefaultPort's series (4738, 4748, ... 4808), so that the page keeps its
// address across restarts, and on any free port when they are all taken.
func ListenDefault() (net.Listener, error) {
	for i := range portTries {
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(DefaultPort+i*portStep))); err == nil {
			return l, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return l, nil
}

// Server serves the page. Its methods are safe for concurrent use.
type Server struct {
	api       http.Handler
	tokenPath string
	// origin is the page's origin (http://127.0.0.1:PORT); hosts are the
	// Host headers it answers to.
	origin string
	hosts  map[string]bool
	assets *assets

	mu  sync.Mutex
	tok *token

	srv    *http.Server
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Serve serves the page on l (a loopback listener, see Listen) in the
// background, passing its /v1/ requests to api. The token is read from
// home's TokenFile, which is written first if there is none. Close stops
// it; on an error, l is closed.
func Serve(l net.Listener, home string, api http.Handler) (*Server, error) {
	s, err := newServer(l.Addr(), home, api)
	if err != nil {
		l.Close()
		return nil, err
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       bodyTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return s.base },
	}
	s.wg.Go(func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorw("web page stopped", "error", err)
		}
	})
	return s, nil
}

// newServer returns the page's server for a listener at addr, without
// serving: Serve serves it, tests call ServeHTTP.
func newServer(addr net.Addr, home string, api http.Handler) (*Server, error) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || !ta.IP.IsLoopback() {
		return nil, fmt.Errorf("web: listening on %v: %w", addr, ErrNotLoopback)
	}
	as, err := loadAssets()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(home, TokenFile)
	v, err := loadToken(path)
	if err != nil {
		return nil, err
	}
	hostPort := ta.AddrPort().String() // 127.0.0.1:4738, [::1]:4738
	port := strconv.Itoa(ta.Port)
	s := &Server{
		api:       api,
		tokenPath: path,
		origin:    "http://" + hostPort,
		hosts:     map[string]bool{hostPort: true, "localhost:" + port: true},
		assets:    as,
		tok:       newToken(v),
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Addr is the page's address: 127.0.0.1:PORT.
func (s *Server) Addr() string { return strings.TrimPrefix(s.origin, "http://") }

// URL is the page's address as a URL: http://127.0.0.1:PORT/.
func (s *Server) URL() string { return s.origin + "/" }

func (s *Server) token() *token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok
}

// Page says where the page is served and what opens it, for GET /v1/web
// (it implements localapi.WebPage).
func (s *Server) Page() apitype.WebPage {
	t := s.token()
	return apitype.WebPage{Enabled: true, URL: s.URL(), Token: t.value, OpenURL: s.URL() + "?token=" + t.value}
}

// RotateToken replaces the token, in the data directory first: every
// browser that opened the page with the old one must open it again (its
// cookie no longer opens the page, and its event stream ends at its next
// reconnection).
func (s *Server) RotateToken() (apitype.WebPage, error) {
	s.mu.Lock()
	v := randomToken()
	err := writeToken(s.tokenPath, v)
	if err == nil {
		s.tok.cancel()
		s.tok = newToken(v)
	}
	s.mu.Unlock()
	if err != nil {
		return apitype.WebPage{}, err
	}
	log.Infow("web page token replaced")
	return s.Page(), nil
}

// Close stops serving, ends the page's open requests (event streams
// included) and waits for them. Idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		s.token().cancel()
		if s.srv == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err = s.srv.Shutdown(ctx); err != nil {
			err = s.srv.Close()
		}
		s.wg.Wait()
	})
	return err
}
