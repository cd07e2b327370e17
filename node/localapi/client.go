package localapi

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
	"syscall"

	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// Client talks to a daemon's local API. It is safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the API socket of the data directory home.
func NewClient(home string) *Client {
	socket := SocketPath(home)
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
	var e *Error
	return errors.As(err, &e) && e.Code == CodeNoDaemon
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
		return fmt.Errorf("localapi: decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// send performs a request and turns transport failures and error answers
// into *Error.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
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
			return nil, &Error{Code: CodeNoDaemon, Message: fmt.Sprintf("No peercollab daemon is running (no answer on %s).", c.socket)}
		}
		return nil, fmt.Errorf("localapi: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var eb errorBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&eb); err != nil || eb.Error == nil {
		return nil, &Error{Status: resp.StatusCode, Code: CodeInternal, Message: fmt.Sprintf("The daemon answered %s to %s %s.", resp.Status, method, path)}
	}
	eb.Error.Status = resp.StatusCode
	return nil, eb.Error
}

func peerPath(p string) string { return url.PathEscape(p) }

// ID returns the node's identity and addresses.
func (c *Client) ID(ctx context.Context) (Info, error) {
	var v Info
	return v, c.do(ctx, "GET", "/v1/id", nil, &v)
}

// Card returns the node's own card.
func (c *Client) Card(ctx context.Context) (CardResponse, error) {
	var v CardResponse
	return v, c.do(ctx, "GET", "/v1/card", nil, &v)
}

// Contacts lists the contacts.
func (c *Client) Contacts(ctx context.Context) ([]*Contact, error) {
	var v []*Contact
	return v, c.do(ctx, "GET", "/v1/contacts", nil, &v)
}

// AddContact adds (or refreshes) a contact from a card.
func (c *Client) AddContact(ctx context.Context, req AddContactRequest) (AddContactResponse, error) {
	var v AddContactResponse
	return v, c.do(ctx, "POST", "/v1/contacts", req, &v)
}

// Contact shows the contact named by peer (ID, nickname or unique prefix).
func (c *Client) Contact(ctx context.Context, peer string) (ContactDetail, error) {
	var v ContactDetail
	return v, c.do(ctx, "GET", "/v1/contacts/"+peerPath(peer), nil, &v)
}

// UpdateContact changes a contact's nickname, watch flag or permission.
func (c *Client) UpdateContact(ctx context.Context, peer string, req UpdateContactRequest) (*Contact, error) {
	var v Contact
	return &v, c.do(ctx, "PATCH", "/v1/contacts/"+peerPath(peer), req, &v)
}

// RemoveContact deletes a contact.
func (c *Client) RemoveContact(ctx context.Context, peer string) error {
	return c.do(ctx, "DELETE", "/v1/contacts/"+peerPath(peer), nil, nil)
}

// ExportContact returns a contact's card as stored.
func (c *Client) ExportContact(ctx context.Context, peer string) (CardResponse, error) {
	var v CardResponse
	return v, c.do(ctx, "GET", "/v1/contacts/"+peerPath(peer)+"/card", nil, &v)
}

// Locate finds a peer's current addresses through the DHT (and keeps them
// in its contact entry).
func (c *Client) Locate(ctx context.Context, peer string) (LocateResponse, error) {
	var v LocateResponse
	return v, c.do(ctx, "POST", "/v1/contacts/"+peerPath(peer)+"/locate", nil, &v)
}

// CheckCard verifies a card and evaluates its trust without storing it.
func (c *Client) CheckCard(ctx context.Context, card []byte) (CardView, error) {
	var v CardView
	return v, c.do(ctx, "POST", "/v1/cards/check", CardRequest{Card: string(card)}, &v)
}

// Endorse has the node endorse a card; it returns the endorsed card.
func (c *Client) Endorse(ctx context.Context, req EndorseRequest) (CardResponse, error) {
	var v CardResponse
	return v, c.do(ctx, "POST", "/v1/cards/endorse", req, &v)
}

// Ping connects to a peer and measures round trips.
func (c *Client) Ping(ctx context.Context, req PingRequest) (PingResponse, error) {
	var v PingResponse
	return v, c.do(ctx, "POST", "/v1/ping", req, &v)
}

// Scope tells where the node is signed in.
func (c *Client) Scope(ctx context.Context) (node.Scope, error) {
	var v ScopeResponse
	return v.Scope, c.do(ctx, "GET", "/v1/scope", nil, &v)
}

// SignIn adds scope to where the node is signed in and returns the result.
func (c *Client) SignIn(ctx context.Context, scope node.Scope) (node.Scope, error) {
	var v ScopeResponse
	return v.Scope, c.do(ctx, "POST", "/v1/signin", ScopeRequest{scope}, &v)
}

// SignOut removes scope from where the node is signed in.
func (c *Client) SignOut(ctx context.Context, scope node.Scope) (node.Scope, error) {
	var v ScopeResponse
	return v.Scope, c.do(ctx, "POST", "/v1/signout", ScopeRequest{scope}, &v)
}

// Near lists the people near.
func (c *Client) Near(ctx context.Context) ([]Person, error) {
	var v []Person
	return v, c.do(ctx, "GET", "/v1/near", nil, &v)
}

// AddNear adds a person near as a contact, with the card they introduced
// themselves with.
func (c *Client) AddNear(ctx context.Context, peer string, req AddNearRequest) (AddContactResponse, error) {
	var v AddContactResponse
	return v, c.do(ctx, "POST", "/v1/near/"+peerPath(peer)+"/contact", req, &v)
}

// MyEndpoint returns the node's own endpoint data.
func (c *Client) MyEndpoint(ctx context.Context) (MyEndpoint, error) {
	var v MyEndpoint
	return v, c.do(ctx, "GET", "/v1/me/endpoint", nil, &v)
}

// SetPresence sets the node's presence.
func (c *Client) SetPresence(ctx context.Context, p endpoint.Presence) (MyEndpoint, error) {
	var v MyEndpoint
	return v, c.do(ctx, "PUT", "/v1/me/presence", p, &v)
}

// SetName sets the node's endpoint name.
func (c *Client) SetName(ctx context.Context, name string) (MyEndpoint, error) {
	var v MyEndpoint
	return v, c.do(ctx, "PUT", "/v1/me/name", NameRequest{name}, &v)
}

// RegisterApp registers an application.
func (c *Client) RegisterApp(ctx context.Context, a publish.RegisteredApp) error {
	return c.do(ctx, "POST", "/v1/me/apps", a, nil)
}

// RemoveApp unregisters an application.
func (c *Client) RemoveApp(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/v1/me/apps/"+url.PathEscape(id), nil, nil)
}

// SetObject publishes an object.
func (c *Client) SetObject(ctx context.Context, id string, data []byte) error {
	return c.do(ctx, "PUT", "/v1/me/objects/"+url.PathEscape(id), ObjectRequest{data}, nil)
}

// RemoveObject unpublishes an object.
func (c *Client) RemoveObject(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/v1/me/objects/"+url.PathEscape(id), nil, nil)
}

// PeerEndpoint returns a peer's endpoint data: from its watch, or fetched
// now.
func (c *Client) PeerEndpoint(ctx context.Context, peer string) (PeerEndpoint, error) {
	var v PeerEndpoint
	return v, c.do(ctx, "GET", "/v1/peers/"+peerPath(peer)+"/endpoint", nil, &v)
}

// Watch starts following a peer's endpoint data.
func (c *Client) Watch(ctx context.Context, peer string) (PeerEndpoint, error) {
	var v PeerEndpoint
	return v, c.do(ctx, "POST", "/v1/peers/"+peerPath(peer)+"/watch", nil, &v)
}

// Unwatch stops following a peer.
func (c *Client) Unwatch(ctx context.Context, peer string) error {
	return c.do(ctx, "DELETE", "/v1/peers/"+peerPath(peer)+"/watch", nil, nil)
}

// Watching lists the peers the node follows.
func (c *Client) Watching(ctx context.Context) ([]PeerEndpoint, error) {
	var v []PeerEndpoint
	return v, c.do(ctx, "GET", "/v1/watching", nil, &v)
}

// Invite sends invitations; it returns at once with them and their tally.
func (c *Client) Invite(ctx context.Context, req InviteRequest) (InvitationList, error) {
	var v InvitationList
	return v, c.do(ctx, "POST", "/v1/invitations", req, &v)
}

// Invitations lists invitations; direction, batch and session filter when
// not empty, open keeps only unanswered ones.
func (c *Client) Invitations(ctx context.Context, direction, batch, session string, open bool) (InvitationList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"direction": direction, "batch": batch, "session": session} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if open {
		q.Set("open", "1")
	}
	var v InvitationList
	return v, c.do(ctx, "GET", "/v1/invitations?"+q.Encode(), nil, &v)
}

// Invitation returns one invitation with its inviter's card.
func (c *Client) Invitation(ctx context.Context, id string) (InvitationDetail, error) {
	var v InvitationDetail
	return v, c.do(ctx, "GET", "/v1/invitations/"+url.PathEscape(id), nil, &v)
}

// AnswerInvitation accepts, declines or cancels an invitation (verb is
// "accept", "decline" or "cancel").
func (c *Client) AnswerInvitation(ctx context.Context, id, verb string) (invitations.Record, error) {
	var v invitations.Record
	return v, c.do(ctx, "POST", "/v1/invitations/"+url.PathEscape(id)+"/"+verb, nil, &v)
}

// CancelUnanswered cancels the invitations of a batch that have no answer.
func (c *Client) CancelUnanswered(ctx context.Context, batch string) (InvitationList, error) {
	var v InvitationList
	return v, c.do(ctx, "POST", "/v1/invitations/cancel-unanswered", BatchRequest{batch}, &v)
}

// InvitationPolicy returns whose invitations the node takes.
func (c *Client) InvitationPolicy(ctx context.Context) (invitations.Policy, error) {
	var v PolicyBody
	return v.Policy, c.do(ctx, "GET", "/v1/invitations/policy", nil, &v)
}

// SetInvitationPolicy changes whose invitations the node takes.
func (c *Client) SetInvitationPolicy(ctx context.Context, p invitations.Policy) (invitations.Policy, error) {
	var v PolicyBody
	return v.Policy, c.do(ctx, "PUT", "/v1/invitations/policy", PolicyBody{p}, &v)
}

// CreateSession hosts a new session for an application.
func (c *Client) CreateSession(ctx context.Context, app string) (sessions.View, error) {
	var v sessions.View
	return v, c.do(ctx, "POST", "/v1/sessions", SessionCreateRequest{app}, &v)
}

// Sessions lists the sessions, hosted and joined.
func (c *Client) Sessions(ctx context.Context) ([]sessions.View, error) {
	var v []sessions.View
	return v, c.do(ctx, "GET", "/v1/sessions", nil, &v)
}

// Session shows one session.
func (c *Client) Session(ctx context.Context, id string) (sessions.View, error) {
	var v sessions.View
	return v, c.do(ctx, "GET", "/v1/sessions/"+url.PathEscape(id), nil, &v)
}

// SessionInvite invites peers to a hosted session.
func (c *Client) SessionInvite(ctx context.Context, id string, req SessionInviteRequest) (SessionInviteResponse, error) {
	var v SessionInviteResponse
	return v, c.do(ctx, "POST", "/v1/sessions/"+url.PathEscape(id)+"/invite", req, &v)
}

// SessionOp performs "cancel-unanswered", "start", "end" or "leave" on a
// session.
func (c *Client) SessionOp(ctx context.Context, id, op string) (sessions.View, error) {
	var v sessions.View
	return v, c.do(ctx, "POST", "/v1/sessions/"+url.PathEscape(id)+"/"+op, nil, &v)
}

// SessionRemove removes a member from a hosted session.
func (c *Client) SessionRemove(ctx context.Context, id, peer string) (sessions.View, error) {
	var v sessions.View
	return v, c.do(ctx, "POST", "/v1/sessions/"+url.PathEscape(id)+"/remove", PeerRequest{peer}, &v)
}

// SessionSend sends an application message to a session.
func (c *Client) SessionSend(ctx context.Context, id string, data []byte) (sessions.Message, error) {
	var v sessions.Message
	return v, c.do(ctx, "POST", "/v1/sessions/"+url.PathEscape(id)+"/send", SessionSendRequest{data}, &v)
}

// SessionMessages returns the messages delivered after index after.
func (c *Client) SessionMessages(ctx context.Context, id string, after uint64) ([]sessions.Message, error) {
	var v []sessions.Message
	return v, c.do(ctx, "GET", "/v1/sessions/"+url.PathEscape(id)+"/messages?after="+strconv.FormatUint(after, 10), nil, &v)
}

// RequestHost asks a peer to host a session for an application.
func (c *Client) RequestHost(ctx context.Context, req HostRequestBody) (HostRequestResult, error) {
	var v HostRequestResult
	return v, c.do(ctx, "POST", "/v1/host-requests", req, &v)
}

// HostRequests lists the host requests received.
func (c *Client) HostRequests(ctx context.Context) ([]sessions.HostRequest, error) {
	var v []sessions.HostRequest
	return v, c.do(ctx, "GET", "/v1/host-requests", nil, &v)
}

// AnswerHostRequest accepts or declines a host request.
func (c *Client) AnswerHostRequest(ctx context.Context, id string, accept bool) (sessions.HostRequest, error) {
	verb := "decline"
	if accept {
		verb = "accept"
	}
	var v sessions.HostRequest
	return v, c.do(ctx, "POST", "/v1/host-requests/"+url.PathEscape(id)+"/"+verb, nil, &v)
}

// StreamEvent is an event as the client receives it: the payload is left
// as JSON for the caller to decode by Type.
type StreamEvent struct {
	events.Event
	Data json.RawMessage `json:"data"`
}

// EventStream is an open event stream. Next and Close may be called from
// different goroutines.
type EventStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// Events opens the node's event stream. Events published before the call
// are not replayed.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	resp, err := c.send(ctx, "GET", "/v1/events", nil)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	return &EventStream{body: resp.Body, sc: sc}, nil
}

// Next returns the next event. It returns io.EOF when the daemon ends the
// stream, and the daemon's *Error when it cuts the stream off. Cancel the
// context given to Events, or call Close, to stop a pending Next.
func (s *EventStream) Next() (StreamEvent, error) {
	var typ string
	var data []byte
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if data == nil {
				continue
			}
			if typ == "error" {
				var eb errorBody
				if json.Unmarshal(data, &eb) == nil && eb.Error != nil {
					return StreamEvent{}, eb.Error
				}
				return StreamEvent{}, fmt.Errorf("localapi: event stream error: %s", data)
			}
			var ev StreamEvent
			if err := json.Unmarshal(data, &ev); err != nil {
				return StreamEvent{}, fmt.Errorf("localapi: bad event: %w", err)
			}
			return ev, nil
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: ")...)
		}
	}
	if err := s.sc.Err(); err != nil {
		return StreamEvent{}, err
	}
	return StreamEvent{}, io.EOF
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }
