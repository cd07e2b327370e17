// Package client is the typed Go client of a daemon's local API: the CLI
// uses it, and so can any application. It speaks the contract of package
// apitype and links nothing of the node (no libp2p host, DHT or database),
// so a program that only drives a daemon stays small.
//
// Errors the daemon answers with are *apitype.Error values, with a stable
// code and a sentence for a person; a missing daemon is one too (see
// IsNoDaemon). Sentence turns any error into such a sentence.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/internal/sentence"
)

// maxErrorBody caps the error body the client reads.
const maxErrorBody = 256 << 10

// Client talks to a daemon's local API. It is safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client for the API socket of the data directory home. It
// connects at its first call.
func New(home string) *Client {
	socket := apitype.SocketPath(home)
	return &Client{
		socket: socket,
		hc: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		}},
	}
}

// IsNoDaemon reports whether err means that no daemon answers on the socket.
func IsNoDaemon(err error) bool {
	var e *apitype.Error
	return errors.As(err, &e) && e.Code == apitype.CodeNoDaemon
}

// Sentence returns err as one sentence for a person: an API error's message
// as it is, any other error cleaned up the way the daemon cleans up its
// messages.
func Sentence(err error) string {
	var apiErr *apitype.Error
	if errors.As(err, &apiErr) {
		return apiErr.Message
	}
	return sentence.Make(err.Error(), "")
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (when out is not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// send performs a request and turns transport failures and error answers
// into *apitype.Error.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	if err := apitype.CheckSocketPath(c.socket); err != nil {
		return nil, &apitype.Error{Code: apitype.CodeHomeTooLong, Message: sentence.Make(err.Error(), "")}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://peercollab"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &apitype.Error{Code: apitype.CodeNoDaemon, Message: fmt.Sprintf("No peercollab daemon is running (no answer on %s).", c.socket)}
		}
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var eb apitype.ErrorBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&eb); err != nil || eb.Error == nil {
		return nil, &apitype.Error{Status: resp.StatusCode, Code: apitype.CodeInternal, Message: fmt.Sprintf("The daemon answered %s to %s %s.", resp.Status, method, path)}
	}
	eb.Error.Status = resp.StatusCode
	return nil, eb.Error
}

func esc(s string) string { return url.PathEscape(s) }

// ID returns the node's identity and addresses.
func (c *Client) ID(ctx context.Context) (apitype.Info, error) {
	var v apitype.Info
	return v, c.do(ctx, "GET", "/v1/id", nil, &v)
}

// Version returns the daemon's build: version, commit, Go and go-libp2p.
func (c *Client) Version(ctx context.Context) (apitype.VersionInfo, error) {
	var v apitype.VersionInfo
	return v, c.do(ctx, "GET", "/v1/version", nil, &v)
}

// Doctor runs the daemon's health checks.
func (c *Client) Doctor(ctx context.Context) (apitype.DoctorReport, error) {
	var v apitype.DoctorReport
	return v, c.do(ctx, "GET", "/v1/doctor", nil, &v)
}

// LogLevels returns the log level of each of the daemon's subsystems.
func (c *Client) LogLevels(ctx context.Context) (apitype.LogLevels, error) {
	var v apitype.LogLevels
	return v, c.do(ctx, "GET", "/v1/log", nil, &v)
}

// SetLogLevel sets the log level of a subsystem of the daemon, or of all
// for "" or "*", until it stops.
func (c *Client) SetLogLevel(ctx context.Context, level, subsystem string) (apitype.LogLevels, error) {
	var v apitype.LogLevels
	return v, c.do(ctx, "PUT", "/v1/log/level", apitype.LogLevelRequest{Level: level, Subsystem: subsystem}, &v)
}

// OpenAPI returns the daemon's OpenAPI document of the API.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var v json.RawMessage
	return v, c.do(ctx, "GET", "/v1/openapi.json", nil, &v)
}

// Card returns the node's own card.
func (c *Client) Card(ctx context.Context) (apitype.CardResponse, error) {
	var v apitype.CardResponse
	return v, c.do(ctx, "GET", "/v1/card", nil, &v)
}

// Contacts lists the contacts.
func (c *Client) Contacts(ctx context.Context) ([]*apitype.Contact, error) {
	var v []*apitype.Contact
	return v, c.do(ctx, "GET", "/v1/contacts", nil, &v)
}

// AddContact adds (or refreshes) a contact from a card.
func (c *Client) AddContact(ctx context.Context, req apitype.AddContactRequest) (apitype.AddContactResponse, error) {
	var v apitype.AddContactResponse
	return v, c.do(ctx, "POST", "/v1/contacts", req, &v)
}

// Contact shows the contact named by peer (ID, nickname or unique prefix).
func (c *Client) Contact(ctx context.Context, peer string) (apitype.ContactDetail, error) {
	var v apitype.ContactDetail
	return v, c.do(ctx, "GET", "/v1/contacts/"+esc(peer), nil, &v)
}

// UpdateContact changes a contact's nickname, watch flag or permission.
func (c *Client) UpdateContact(ctx context.Context, peer string, req apitype.UpdateContactRequest) (*apitype.Contact, error) {
	var v apitype.Contact
	return &v, c.do(ctx, "PATCH", "/v1/contacts/"+esc(peer), req, &v)
}

// RemoveContact deletes a contact.
func (c *Client) RemoveContact(ctx context.Context, peer string) error {
	return c.do(ctx, "DELETE", "/v1/contacts/"+esc(peer), nil, nil)
}

// ExportContact returns a contact's card as stored.
func (c *Client) ExportContact(ctx context.Context, peer string) (apitype.CardResponse, error) {
	var v apitype.CardResponse
	return v, c.do(ctx, "GET", "/v1/contacts/"+esc(peer)+"/card", nil, &v)
}

// Locate finds a peer's current addresses through the DHT (and keeps them
// in its contact entry).
func (c *Client) Locate(ctx context.Context, peer string) (apitype.LocateResponse, error) {
	var v apitype.LocateResponse
	return v, c.do(ctx, "POST", "/v1/contacts/"+esc(peer)+"/locate", nil, &v)
}

// CheckCard verifies a card and evaluates its trust without storing it.
func (c *Client) CheckCard(ctx context.Context, card []byte) (apitype.CardView, error) {
	var v apitype.CardView
	return v, c.do(ctx, "POST", "/v1/cards/check", apitype.CardRequest{Card: string(card)}, &v)
}

// Endorse has the node endorse a card; it returns the endorsed card.
func (c *Client) Endorse(ctx context.Context, req apitype.EndorseRequest) (apitype.CardResponse, error) {
	var v apitype.CardResponse
	return v, c.do(ctx, "POST", "/v1/cards/endorse", req, &v)
}

// Ping connects to a peer and measures round trips.
func (c *Client) Ping(ctx context.Context, req apitype.PingRequest) (apitype.PingResponse, error) {
	var v apitype.PingResponse
	return v, c.do(ctx, "POST", "/v1/ping", req, &v)
}

// Scope tells where the node is signed in.
func (c *Client) Scope(ctx context.Context) (apitype.Scope, error) {
	var v apitype.ScopeResponse
	return v.Scope, c.do(ctx, "GET", "/v1/scope", nil, &v)
}

// SignIn adds scope to where the node is signed in and returns the result.
func (c *Client) SignIn(ctx context.Context, scope apitype.Scope) (apitype.Scope, error) {
	var v apitype.ScopeResponse
	return v.Scope, c.do(ctx, "POST", "/v1/signin", apitype.ScopeRequest{Scope: scope}, &v)
}

// SignOut removes scope from where the node is signed in.
func (c *Client) SignOut(ctx context.Context, scope apitype.Scope) (apitype.Scope, error) {
	var v apitype.ScopeResponse
	return v.Scope, c.do(ctx, "POST", "/v1/signout", apitype.ScopeRequest{Scope: scope}, &v)
}

// Near lists the people near.
func (c *Client) Near(ctx context.Context) ([]apitype.PersonNear, error) {
	var v []apitype.PersonNear
	return v, c.do(ctx, "GET", "/v1/near", nil, &v)
}

// AddNear adds a person near as a contact, with the card they introduced
// themselves with.
func (c *Client) AddNear(ctx context.Context, peer string, req apitype.AddNearRequest) (apitype.AddContactResponse, error) {
	var v apitype.AddContactResponse
	return v, c.do(ctx, "POST", "/v1/near/"+esc(peer)+"/contact", req, &v)
}

// MyEndpoint returns the node's own endpoint data.
func (c *Client) MyEndpoint(ctx context.Context) (apitype.MyEndpoint, error) {
	var v apitype.MyEndpoint
	return v, c.do(ctx, "GET", "/v1/me/endpoint", nil, &v)
}

// SetPresence sets the node's presence.
func (c *Client) SetPresence(ctx context.Context, p apitype.Presence) (apitype.MyEndpoint, error) {
	var v apitype.MyEndpoint
	return v, c.do(ctx, "PUT", "/v1/me/presence", p, &v)
}

// SetMe changes this node's display name and e-mail address (PUT /v1/me).
func (c *Client) SetMe(ctx context.Context, req apitype.MeRequest) (apitype.Info, error) {
	var v apitype.Info
	return v, c.do(ctx, "PUT", "/v1/me", req, &v)
}

// SetName sets the node's endpoint name.
func (c *Client) SetName(ctx context.Context, name string) (apitype.MyEndpoint, error) {
	var v apitype.MyEndpoint
	return v, c.do(ctx, "PUT", "/v1/me/name", apitype.NameRequest{Name: name}, &v)
}

// RegisterApp registers an application.
func (c *Client) RegisterApp(ctx context.Context, a apitype.RegisteredApp) error {
	return c.do(ctx, "POST", "/v1/me/apps", a, nil)
}

// RemoveApp unregisters an application.
func (c *Client) RemoveApp(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/v1/me/apps/"+esc(id), nil, nil)
}

// SetObject publishes an object.
func (c *Client) SetObject(ctx context.Context, id string, data []byte) error {
	return c.do(ctx, "PUT", "/v1/me/objects/"+esc(id), apitype.ObjectRequest{Data: data}, nil)
}

// RemoveObject unpublishes an object.
func (c *Client) RemoveObject(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/v1/me/objects/"+esc(id), nil, nil)
}

// ForgetEndpoint drops what the node keeps of a peer's endpoint data
// (DELETE /v1/peers/{peer}/endpoint); the peer must not be watched.
func (c *Client) ForgetEndpoint(ctx context.Context, peer string) error {
	return c.do(ctx, "DELETE", "/v1/peers/"+esc(peer)+"/endpoint", nil, nil)
}

// PeerEndpoint returns a peer's endpoint data: from its watch, or fetched
// now.
func (c *Client) PeerEndpoint(ctx context.Context, peer string) (apitype.PeerEndpoint, error) {
	var v apitype.PeerEndpoint
	return v, c.do(ctx, "GET", "/v1/peers/"+esc(peer)+"/endpoint", nil, &v)
}

// Watch starts following a peer's endpoint data.
func (c *Client) Watch(ctx context.Context, peer string) (apitype.PeerEndpoint, error) {
	var v apitype.PeerEndpoint
	return v, c.do(ctx, "POST", "/v1/peers/"+esc(peer)+"/watch", nil, &v)
}

// Unwatch stops following a peer.
func (c *Client) Unwatch(ctx context.Context, peer string) error {
	return c.do(ctx, "DELETE", "/v1/peers/"+esc(peer)+"/watch", nil, nil)
}

// Watching lists the peers the node follows.
func (c *Client) Watching(ctx context.Context) ([]apitype.PeerEndpoint, error) {
	var v []apitype.PeerEndpoint
	return v, c.do(ctx, "GET", "/v1/watching", nil, &v)
}

// Invite sends invitations; it returns at once with them and their tally.
func (c *Client) Invite(ctx context.Context, req apitype.InviteRequest) (apitype.InvitationList, error) {
	var v apitype.InvitationList
	return v, c.do(ctx, "POST", "/v1/invitations", req, &v)
}

// Invitations lists invitations; direction, batch and session filter when
// not empty, open keeps only unanswered ones.
func (c *Client) Invitations(ctx context.Context, direction apitype.Direction, batch, session string, open bool) (apitype.InvitationList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"direction": string(direction), "batch": batch, "session": session} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if open {
		q.Set("open", "1")
	}
	var v apitype.InvitationList
	return v, c.do(ctx, "GET", "/v1/invitations?"+q.Encode(), nil, &v)
}

// Invitation returns one invitation with its inviter's card.
func (c *Client) Invitation(ctx context.Context, id string) (apitype.InvitationDetail, error) {
	var v apitype.InvitationDetail
	return v, c.do(ctx, "GET", "/v1/invitations/"+esc(id), nil, &v)
}

// AnswerInvitation accepts, declines or cancels an invitation (verb is
// "accept", "decline" or "cancel").
func (c *Client) AnswerInvitation(ctx context.Context, id, verb string) (apitype.Invitation, error) {
	var v apitype.Invitation
	return v, c.do(ctx, "POST", "/v1/invitations/"+esc(id)+"/"+verb, nil, &v)
}

// CancelUnanswered cancels the invitations of a batch that have no answer.
func (c *Client) CancelUnanswered(ctx context.Context, batch string) (apitype.InvitationList, error) {
	var v apitype.InvitationList
	return v, c.do(ctx, "POST", "/v1/invitations/cancel-unanswered", apitype.BatchRequest{Batch: batch}, &v)
}

// InvitationPolicy returns whose invitations the node takes.
func (c *Client) InvitationPolicy(ctx context.Context) (apitype.Policy, error) {
	var v apitype.PolicyBody
	return v.Policy, c.do(ctx, "GET", "/v1/invitations/policy", nil, &v)
}

// SetInvitationPolicy changes whose invitations the node takes.
func (c *Client) SetInvitationPolicy(ctx context.Context, p apitype.Policy) (apitype.Policy, error) {
	var v apitype.PolicyBody
	return v.Policy, c.do(ctx, "PUT", "/v1/invitations/policy", apitype.PolicyBody{Policy: p}, &v)
}

// CreateSession hosts a new session for an application.
func (c *Client) CreateSession(ctx context.Context, app string) (apitype.Session, error) {
	var v apitype.Session
	return v, c.do(ctx, "POST", "/v1/sessions", apitype.SessionCreateRequest{AppID: app}, &v)
}

// Sessions lists the sessions, hosted and joined.
func (c *Client) Sessions(ctx context.Context) ([]apitype.Session, error) {
	var v []apitype.Session
	return v, c.do(ctx, "GET", "/v1/sessions", nil, &v)
}

// Session shows one session.
func (c *Client) Session(ctx context.Context, id string) (apitype.Session, error) {
	var v apitype.Session
	return v, c.do(ctx, "GET", "/v1/sessions/"+esc(id), nil, &v)
}

// SessionInvite invites peers to a hosted session.
func (c *Client) SessionInvite(ctx context.Context, id string, req apitype.SessionInviteRequest) (apitype.SessionInviteResponse, error) {
	var v apitype.SessionInviteResponse
	return v, c.do(ctx, "POST", "/v1/sessions/"+esc(id)+"/invite", req, &v)
}

// SessionOp performs "cancel-unanswered", "start", "end" or "leave" on a
// session.
func (c *Client) SessionOp(ctx context.Context, id, op string) (apitype.Session, error) {
	var v apitype.Session
	return v, c.do(ctx, "POST", "/v1/sessions/"+esc(id)+"/"+op, nil, &v)
}

// SessionRemove removes a member from a hosted session.
func (c *Client) SessionRemove(ctx context.Context, id, peer string) (apitype.Session, error) {
	var v apitype.Session
	return v, c.do(ctx, "POST", "/v1/sessions/"+esc(id)+"/remove", apitype.PeerRequest{Peer: peer}, &v)
}

// SessionSend sends an application message to a session.
func (c *Client) SessionSend(ctx context.Context, id string, data []byte) (apitype.Message, error) {
	var v apitype.Message
	return v, c.do(ctx, "POST", "/v1/sessions/"+esc(id)+"/send", apitype.SessionSendRequest{Data: data}, &v)
}

// SessionMessages returns the messages delivered after index after.
func (c *Client) SessionMessages(ctx context.Context, id string, after uint64) ([]apitype.Message, error) {
	var v []apitype.Message
	return v, c.do(ctx, "GET", "/v1/sessions/"+esc(id)+"/messages?after="+strconv.FormatUint(after, 10), nil, &v)
}

// RequestHost asks a peer to host a session for an application.
func (c *Client) RequestHost(ctx context.Context, req apitype.HostRequestBody) (apitype.HostRequestResult, error) {
	var v apitype.HostRequestResult
	return v, c.do(ctx, "POST", "/v1/host-requests", req, &v)
}

// HostRequests lists the host requests received.
func (c *Client) HostRequests(ctx context.Context) ([]apitype.HostRequest, error) {
	var v []apitype.HostRequest
	return v, c.do(ctx, "GET", "/v1/host-requests", nil, &v)
}

// AnswerHostRequest accepts or declines a host request.
func (c *Client) AnswerHostRequest(ctx context.Context, id string, accept bool) (apitype.HostRequest, error) {
	verb := "decline"
	if accept {
		verb = "accept"
	}
	var v apitype.HostRequest
	return v, c.do(ctx, "POST", "/v1/host-requests/"+esc(id)+"/"+verb, nil, &v)
}

// EventStream is an open event stream. Next and Close may be called from
// different goroutines; Next from one goroutine at a time.
type EventStream struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	// events carries what the reading goroutine parsed; ended is closed
	// once it stops, err (set before) saying why.
	events chan apitype.Event
	ended  chan struct{}
	err    error
	closed chan struct{}
	last   atomic.Uint64

	closeOnce sync.Once
	wg        sync.WaitGroup
}

// ErrStreamClosed is what Next returns once the stream was closed.
var ErrStreamClosed = errors.New("client: event stream closed")

// EventsOption changes what an event stream delivers.
type EventsOption func(*url.Values)

// After resumes a stream after the event numbered seq (an Event's Seq, as
// LastSeq returns it): the daemon sends the events after it that it still
// keeps, an apitype.EventsLost event in place of those it no longer keeps,
// then the new ones.
func After(seq uint64) EventsOption {
	return func(q *url.Values) { q.Set("last_event_id", strconv.FormatUint(seq, 10)) }
}

// Types limits a stream to the events whose type is one of types or starts
// with one ("session." for every session event). apitype.EventsLost events
// come whatever the filter.
func Types(types ...string) EventsOption {
	return func(q *url.Values) {
		if len(types) > 0 {
			q.Add("types", strings.Join(types, ","))
		}
	}
}

// Events opens the node's event stream: ctx bounds the opening only; the
// stream lasts until Close, or until the daemon ends it. Without After,
// events published before the call are not replayed.
func (c *Client) Events(ctx context.Context, opts ...EventsOption) (*EventStream, error) {
	q := url.Values{}
	for _, o := range opts {
		o(&q)
	}
	path := "/v1/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	// The stream's own context, so that it outlives ctx; ctx still
	// cancels the opening.
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	resp, err := c.send(sctx, "GET", path, nil)
	stopped := stop()
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if !stopped { // ctx ended just as the answer came
		resp.Body.Close()
		cancel()
		return nil, ctx.Err()
	}
	s := &EventStream{body: resp.Body, cancel: cancel, events: make(chan apitype.Event), ended: make(chan struct{}), closed: make(chan struct{})}
	s.wg.Go(s.read)
	return s, nil
}

// read parses the stream into s.events until it ends.
func (s *EventStream) read() {
	defer close(s.ended)
	sc := bufio.NewScanner(s.body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var typ string
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data == nil {
				continue
			}
			if typ == "error" {
				var eb apitype.ErrorBody
				if json.Unmarshal(data, &eb) == nil && eb.Error != nil {
					s.err = eb.Error
				} else {
					s.err = fmt.Errorf("client: event stream error: %s", data)
				}
				return
			}
			var ev apitype.Event
			if err := json.Unmarshal(data, &ev); err != nil {
				s.err = fmt.Errorf("client: bad event: %w", err)
				return
			}
			typ, data = "", nil
			select {
			case s.events <- ev:
			case <-s.stopped():
				s.err = ErrStreamClosed
				return
			}
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
	s.err = sc.Err()
	select {
	case <-s.stopped():
		s.err = ErrStreamClosed
	default:
		if s.err == nil {
			s.err = io.EOF
		}
	}
}

// stopped is closed once Close was called.
func (s *EventStream) stopped() <-chan struct{} { return s.closed }

// Next returns the next event; decode its Data by its Type (see the
// apitype.Event* names). It returns ctx's error when ctx ends first (the
// stream stays usable), io.EOF when the daemon ends the stream, the
// daemon's *apitype.Error when it cuts the stream off (reconnect with
// After(s.LastSeq()) to get what was missed), and ErrStreamClosed after
// Close.
func (s *EventStream) Next(ctx context.Context) (apitype.Event, error) {
	select {
	case ev := <-s.events:
		if ev.Seq != 0 {
			s.last.Store(ev.Seq)
		}
		return ev, nil
	case <-s.ended:
		return apitype.Event{}, s.err
	case <-ctx.Done():
		return apitype.Event{}, ctx.Err()
	}
}

// LastSeq is the Seq of the last event Next returned (0 before the first),
// to resume a new stream after it with After.
func (s *EventStream) LastSeq() uint64 { return s.last.Load() }

// Close ends the stream and waits for its reading goroutine. It is
// idempotent.
func (s *EventStream) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.cancel()
		s.body.Close()
		s.wg.Wait()
	})
	return nil
}
