// Package localapi is the server of the node's local API: JSON over HTTP on
// a unix socket in the data directory (mode 0600), plus a server-sent event
// stream. Its contract, the requests, views, error codes and events, is
// package apitype; the typed Go client that the CLI and applications use is
// package client. Handlers check, decode, call the node, and convert what
// it returns into the contract's types (convert.go).
//
// Every error is a JSON body {"error": {"code": ..., "message": ...}} with a
// stable code and one sentence for a person; see apitype.Error.
package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	logging "github.com/ipfs/go-log/v2"

	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/internal/sentence"
)

var log = logging.Logger("peercollab/localapi")

// maxBody caps request bodies: a card is at most 64 KiB, JSON-escaped.
const maxBody = 256 << 10

// Timeouts of the API's connections. The clients are local processes that
// send a request in one go, so these are generous; they are there so that
// connections left open, or fed a byte at a time, do not pile up.
const (
	// headerTimeout bounds reading a request's header.
	headerTimeout = 5 * time.Second
	// bodyTimeout bounds reading a whole request, header and body (at most
	// maxBody), from its first byte. It ends with the body: a call may take
	// longer (see readBody), and the event stream stays open for hours.
	bodyTimeout = 10 * time.Second
	// writeTimeout bounds writing an answer, from when it is ready, so that
	// a client that never reads does not hold the handler.
	writeTimeout = 30 * time.Second
	// idleTimeout closes a kept-alive connection with no request. It is
	// longer than the Go client's 90 s, so that the client closes first and
	// never sends on a connection the server is closing.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes caps a request's header.
	maxHeaderBytes = 64 << 10
)

// ErrDaemonRunning means another daemon serves the data directory's socket.
var ErrDaemonRunning = errors.New("localapi: a daemon is already running for this data directory")

// Listen opens the API socket of home with mode 0600. A socket left behind by
// a daemon that died is removed; one that answers is ErrDaemonRunning.
func Listen(home string) (net.Listener, error) {
	path := apitype.SocketPath(home)
	if err := apitype.CheckSocketPath(path); err != nil {
		return nil, fmt.Errorf("localapi: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, ErrDaemonRunning
	} else if errors.Is(err, syscall.ECONNREFUSED) {
		os.Remove(path) // stale
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("localapi: check socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("localapi: listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("localapi: listen: %w", err)
	}
	return l, nil
}

// Server serves the API of one node.
type Server struct {
	n   *node.Node
	srv *http.Server
	wg  sync.WaitGroup
	// streams ends the event streams and the relay of the node's events at
	// Close, which http.Server.Shutdown would otherwise wait for.
	streams    context.Context
	endStreams context.CancelFunc
	// hub relays the node's events, keeping the latest eventHistory of
	// them for streams that resume (see sse.go).
	hub *events.Hub
	// h serves the API: the socket's server, and the web page's for its
	// /v1/ requests (Handler).
	h http.Handler

	webMu sync.Mutex
	web   WebPage // see SetWebPage

	closeOnce sync.Once
}

// newServer returns a server of n that relays its events; the caller
// serves its handler. Close (or, in tests, closeEvents) stops the relay.
func newServer(n *node.Node) *Server {
	s := &Server{n: n, hub: events.NewHub(events.History(eventHistory))}
	s.streams, s.endStreams = context.WithCancel(context.Background())
	s.h = s.handler()
	sub := n.Events() // before New returns: no event is missed
	s.wg.Go(func() { s.relayEvents(sub) })
	return s
}

// Serve starts serving the API of n on l in the background. Close stops it.
func Serve(n *node.Node, l net.Listener) *Server {
	return serve(n, l, timeouts{header: headerTimeout, body: bodyTimeout, idle: idleTimeout})
}

// timeouts are the server's connection timeouts; tests shorten them.
type timeouts struct{ header, body, idle time.Duration }

func serve(n *node.Node, l net.Listener, t timeouts) *Server {
	s := newServer(n)
	s.srv = &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: t.header,
		ReadTimeout:       t.body,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	s.wg.Go(func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorw("local API stopped", "error", err)
		}
	})
	return s
}

// Close stops the server, ends open event streams, and waits. Idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.endStreams()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err = s.srv.Shutdown(ctx); err != nil {
			err = s.srv.Close()
		}
		s.wg.Wait()
		s.hub.Close()
	})
	return err
}

// setWriteDeadline gives the answer writeTimeout to reach the client.
func setWriteDeadline(w http.ResponseWriter) {
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		log.Debugw("set write deadline", "error", err)
	}
}

// writeError answers with err as an error body. A client's mistake (4xx)
// is logged at debug level only, with the start of the body it sent; the
// server's own failures (500) at error level. Neither repeats more than a
// short prefix of what the client sent.
func writeError(w http.ResponseWriter, r *http.Request, body []byte, err error) {
	e := toError(err)
	path := sentence.Cut(r.URL.Path, maxQuoted)
	switch {
	case e.Status == http.StatusInternalServerError:
		log.Errorw("request failed", "method", r.Method, "path", path, "error", sentence.ShortenQuoted(err.Error()))
	case e.Status >= 500: // the fault of a remote peer or of the network
		log.Debugw("request failed", "method", r.Method, "path", path, "error", sentence.ShortenQuoted(err.Error()))
	default:
		log.Debugw("bad request", "method", r.Method, "path", path, "code", e.Code, "error", e.Message, "body", sentence.Quote(string(body)))
	}
	setWriteDeadline(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(apitype.ErrorBody{Error: e})
}
