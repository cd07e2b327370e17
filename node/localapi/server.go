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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	logging "github.com/ipfs/go-log/v2"

	"github.com/peercollab/peercollab/node"
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

// maxSocketPath is the longest path a unix socket may have on Linux.
const maxSocketPath = 107

// ErrDaemonRunning means another daemon serves the data directory's socket.
var ErrDaemonRunning = errors.New("localapi: a daemon is already running for this data directory")

// Listen opens the API socket of home with mode 0600. A socket left behind by
// a daemon that died is removed; one that answers is ErrDaemonRunning.
func Listen(home string) (net.Listener, error) {
	path := apitype.SocketPath(home)
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("localapi: socket path %s is longer than %d bytes; use a shorter --home", path, maxSocketPath)
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
	// streams ends the event streams at Close, which http.Server.Shutdown
	// would otherwise wait for.
	streams    context.Context
	endStreams context.CancelFunc

	closeOnce sync.Once
}

// Serve starts serving the API of n on l in the background. Close stops it.
func Serve(n *node.Node, l net.Listener) *Server {
	return serve(n, l, timeouts{header: headerTimeout, body: bodyTimeout, idle: idleTimeout})
}

// timeouts are the server's connection timeouts; tests shorten them.
type timeouts struct{ header, body, idle time.Duration }

func serve(n *node.Node, l net.Listener, t timeouts) *Server {
	s := &Server{n: n}
	s.streams, s.endStreams = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	s.routes(mux)
	s.srv = &http.Server{
		Handler:           mux,
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
	})
	return err
}

func (s *Server) routes(mux *http.ServeMux) {
	handle(mux, "GET /v1/id", s.id)
	handle(mux, "GET /v1/card", s.card)
	handle(mux, "GET /v1/contacts", s.listContacts)
	handle(mux, "POST /v1/contacts", s.addContact)
	handle(mux, "GET /v1/contacts/{peer}", s.showContact)
	handle(mux, "PATCH /v1/contacts/{peer}", s.updateContact)
	handle(mux, "DELETE /v1/contacts/{peer}", s.removeContact)
	handle(mux, "GET /v1/contacts/{peer}/card", s.exportContact)
	handle(mux, "POST /v1/contacts/{peer}/locate", s.locate)
	handle(mux, "POST /v1/cards/check", s.checkCard)
	handle(mux, "POST /v1/cards/endorse", s.endorse)
	handle(mux, "POST /v1/ping", s.ping)
	handle(mux, "GET /v1/scope", s.getScope)
	handle(mux, "POST /v1/signin", s.signIn)
	handle(mux, "POST /v1/signout", s.signOut)
	handle(mux, "GET /v1/near", s.listNear)
	handle(mux, "POST /v1/near/{peer}/contact", s.addNear)
	handle(mux, "GET /v1/me/endpoint", s.myEndpoint)
	handle(mux, "PUT /v1/me/presence", s.setPresence)
	handle(mux, "PUT /v1/me/name", s.setName)
	handle(mux, "POST /v1/me/apps", s.registerApp)
	handle(mux, "DELETE /v1/me/apps/{id}", s.removeApp)
	handle(mux, "PUT /v1/me/objects/{id}", s.setObject)
	handle(mux, "DELETE /v1/me/objects/{id}", s.removeObject)
	handle(mux, "GET /v1/peers/{peer}/endpoint", s.peerEndpoint)
	handle(mux, "POST /v1/peers/{peer}/watch", s.watchPeer)
	handle(mux, "DELETE /v1/peers/{peer}/watch", s.unwatchPeer)
	handle(mux, "GET /v1/watching", s.watching)
	handle(mux, "POST /v1/invitations", s.invite)
	handle(mux, "GET /v1/invitations", s.listInvitations)
	handle(mux, "GET /v1/invitations/policy", s.getPolicy)
	handle(mux, "PUT /v1/invitations/policy", s.setPolicy)
	handle(mux, "POST /v1/invitations/cancel-unanswered", s.cancelUnanswered)
	handle(mux, "GET /v1/invitations/{id}", s.showInvitation)
	handle(mux, "POST /v1/invitations/{id}/accept", answerInvitation(s.n.Invitations().Accept))
	handle(mux, "POST /v1/invitations/{id}/decline", answerInvitation(s.n.Invitations().Decline))
	handle(mux, "POST /v1/invitations/{id}/cancel", answerInvitation(s.n.Invitations().Cancel))
	handle(mux, "POST /v1/sessions", s.createSession)
	handle(mux, "GET /v1/sessions", s.listSessions)
	handle(mux, "GET /v1/sessions/{id}", s.showSession)
	handle(mux, "POST /v1/sessions/{id}/invite", s.sessionInvite)
	handle(mux, "POST /v1/sessions/{id}/cancel-unanswered", s.sessionOp(s.n.Sessions().CancelUnanswered))
	handle(mux, "POST /v1/sessions/{id}/start", s.sessionOp(s.n.Sessions().Start))
	handle(mux, "POST /v1/sessions/{id}/end", s.sessionOp(s.n.Sessions().End))
	handle(mux, "POST /v1/sessions/{id}/remove", s.sessionRemove)
	handle(mux, "POST /v1/sessions/{id}/leave", s.sessionLeave)
	handle(mux, "POST /v1/sessions/{id}/send", s.sessionSend)
	handle(mux, "GET /v1/sessions/{id}/messages", s.sessionMessages)
	handle(mux, "POST /v1/host-requests", s.hostRequest)
	handle(mux, "GET /v1/host-requests", s.listHostRequests)
	handle(mux, "POST /v1/host-requests/{id}/accept", s.answerHostRequest(true))
	handle(mux, "POST /v1/host-requests/{id}/decline", s.answerHostRequest(false))
	mux.HandleFunc("GET /v1/events", s.events)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, nil, &apitype.Error{Status: http.StatusNotFound, Code: apitype.CodeNotFound,
			Message: fmt.Sprintf("No API endpoint %s %s.", sentence.Cut(r.Method, maxQuoted), sentence.Cut(r.URL.Path, maxQuoted))})
	})
}

// handle registers a JSON endpoint: it reads the request body (see
// readBody), then fn's result is encoded as the answer, its error as an
// error body.
func handle[T any](mux *http.ServeMux, pattern string, fn func(r *http.Request) (T, error)) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r)
		if err != nil {
			writeError(w, r, nil, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		v, err := fn(r)
		if err != nil {
			writeError(w, r, body, err)
			return
		}
		setWriteDeadline(w)
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(v); err != nil {
			log.Debugw("write response", "error", err)
		}
	})
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
