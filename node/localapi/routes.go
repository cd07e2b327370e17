package localapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/internal/sentence"
)

// route is one endpoint of the API: its method and path, what it does, the
// body it takes, the parameters of its query, the type of its answer, and
// its handler. The server registers exactly these, and the OpenAPI
// document (apitype.OpenAPI) describes exactly these: a test checks that it
// does, and that the answers of a real node match its schemas.
type route struct {
	method, path string
	summary      string
	// description says more than the summary, if anything.
	description string
	// body is the type of the request body; nil for none.
	body reflect.Type
	// answer is the type of the JSON answer; nil when the answer is not
	// JSON (the event stream).
	answer reflect.Type
	query  []param
	h      http.HandlerFunc
}

// param is a query parameter of a route.
type param struct {
	name, description string
	// typ is the JSON Schema type of its value: string, integer, boolean.
	typ string
}

// pattern is the route's pattern for http.ServeMux.
func (r route) pattern() string { return r.method + " " + r.path }

// jsonRoute makes the route of a JSON endpoint: handle's reading of the
// body, fn, and the encoding of fn's answer or error.
func jsonRoute[T any](method, path, summary string, fn func(r *http.Request) (T, error)) route {
	return route{method: method, path: path, summary: summary, answer: reflect.TypeFor[T](), h: handle(fn)}
}

// takes sets the type of the route's request body.
func takes[B any](r route) route {
	r.body = reflect.TypeFor[B]()
	return r
}

func (r route) describe(d string) route { r.description = d; return r }

func (r route) params(ps ...param) route { r.query = ps; return r }

// routes is the API: every endpoint the server registers.
func (s *Server) routes() []route {
	inv := s.n.Invitations()
	sess := s.n.Sessions()
	return []route{
		jsonRoute("GET", "/v1/id", "The node's identity, addresses, reachability and version", s.id),
		jsonRoute("GET", "/v1/version", "The daemon's version, commit, Go and go-libp2p versions", s.version),
		jsonRoute("GET", "/v1/doctor", "Checks of the node's health, each with what to do", s.doctor).
			describe("Runs the checks that `peercollab doctor` prints: People Near Me and the interfaces that can multicast, listen addresses, reachability, relay reservations, hole punching, the DHT, the clock and the invitation policy. Each check is ok, warn, fail or info, with advice for all but ok."),
		jsonRoute("GET", "/v1/log", "The log levels of the daemon's subsystems", s.logLevels),
		takes[apitype.LogLevelRequest](jsonRoute("PUT", "/v1/log/level", "Set the log level of one subsystem, or of all (at run time)", s.setLogLevel)),
		takes[apitype.MeRequest](jsonRoute("PUT", "/v1/me", "Change this node's display name and e-mail address", s.setMe)).
			describe("Re-issues the node's self-signed certificate with the same key: the peer ID stays, and so does everyone's trust. People Near Me announces the new name at once, contacts connected now are sent the new card, the others when they next connect; a contact keeps the endorsements it holds. The event is me.changed."),
		jsonRoute("GET", "/v1/card", "This node's own contact card (PEM)", s.card),
		jsonRoute("GET", "/v1/contacts", "List the contacts", s.listContacts),
		takes[apitype.AddContactRequest](jsonRoute("POST", "/v1/contacts", "Add a contact from a card, or refresh the card of one", s.addContact)),
		jsonRoute("GET", "/v1/contacts/{peer}", "Show a contact and the trust in its card", s.showContact),
		takes[apitype.UpdateContactRequest](jsonRoute("PATCH", "/v1/contacts/{peer}", "Change a contact's nickname, watch flag or watcher permission", s.updateContact)),
		jsonRoute("DELETE", "/v1/contacts/{peer}", "Remove a contact", s.removeContact),
		jsonRoute("GET", "/v1/contacts/{peer}/card", "A contact's card as stored", s.exportContact),
		jsonRoute("POST", "/v1/contacts/{peer}/locate", "Find a contact's current addresses through the DHT", s.locate),
		takes[apitype.CardRequest](jsonRoute("POST", "/v1/cards/check", "Verify a card and the trust in it, without adding it", s.checkCard)),
		takes[apitype.EndorseRequest](jsonRoute("POST", "/v1/cards/endorse", "Endorse a card: issue its peer a certificate signed by this node", s.endorse)),
		jsonRoute("GET", "/v1/devices", "The devices of this node's person", s.listDevices),
		takes[apitype.DeviceLinkRequest](jsonRoute("POST", "/v1/devices/link", "Make this device's link request, for a device of the person to approve", s.linkDevice)),
		takes[apitype.DeviceApproveRequest](jsonRoute("POST", "/v1/devices/approve", "Approve a new device's link request: issue it a grant as a device of this person", s.approveDevice)),
		takes[apitype.DeviceJoinRequest](jsonRoute("POST", "/v1/devices/join", "Join the person whose device granted this device's link request", s.joinDevice)),
		jsonRoute("POST", "/v1/devices/{device}/revoke", "Revoke a device of this node's person (signed by this device)", s.revokeDevice),
		takes[apitype.PingRequest](jsonRoute("POST", "/v1/ping", "Connect to a peer and measure round trips", s.ping)),
		jsonRoute("GET", "/v1/scope", "Where the node is signed in", s.getScope),
		takes[apitype.ScopeRequest](jsonRoute("POST", "/v1/signin", "Sign in to a scope", s.signIn)),
		takes[apitype.ScopeRequest](jsonRoute("POST", "/v1/signout", "Sign out of a scope", s.signOut)),
		jsonRoute("GET", "/v1/near", "List the people near (People Near Me)", s.listNear),
		takes[apitype.AddNearRequest](jsonRoute("POST", "/v1/near/{peer}/contact", "Add a person near as a contact, with the card they introduced themselves with", s.addNear)),
		jsonRoute("GET", "/v1/me/endpoint", "This node's endpoint data: name, presence, applications, objects", s.myEndpoint),
		takes[apitype.Presence](jsonRoute("PUT", "/v1/me/presence", "Set this node's presence", s.setPresence)).
			describe("A missing status means offline, which the daemon refuses while signed in: sign out to appear offline."),
		takes[apitype.NameRequest](jsonRoute("PUT", "/v1/me/name", "Set this node's endpoint name", s.setName)),
		takes[apitype.RegisteredApp](jsonRoute("POST", "/v1/me/apps", "Register an application", s.registerApp)),
		jsonRoute("DELETE", "/v1/me/apps/{id}", "Unregister an application", s.removeApp),
		takes[apitype.ObjectRequest](jsonRoute("PUT", "/v1/me/objects/{id}", "Publish or replace an object", s.setObject)),
		jsonRoute("DELETE", "/v1/me/objects/{id}", "Unpublish an object", s.removeObject),
		jsonRoute("GET", "/v1/peers/{peer}/endpoint", "A peer's endpoint data, from its watch or fetched now", s.peerEndpoint),
		jsonRoute("DELETE", "/v1/peers/{peer}/endpoint", "Drop what this node keeps of a peer's endpoint data (a peer not watched)", s.forgetPeerEndpoint),
		jsonRoute("POST", "/v1/peers/{peer}/watch", "Follow a peer's endpoint data", s.watchPeer),
		jsonRoute("DELETE", "/v1/peers/{peer}/watch", "Stop following a peer", s.unwatchPeer),
		jsonRoute("GET", "/v1/watching", "The peers this node follows", s.watching),
		takes[apitype.InviteRequest](jsonRoute("POST", "/v1/invitations", "Invite peers to an application", s.invite)).
			describe("Returns at once with the invitations, pending until delivered; follow them with the event stream (invitation.changed)."),
		jsonRoute("GET", "/v1/invitations", "List invitations, sent and received, with their tally", s.listInvitations).
			params(
				param{"direction", "only sent or only received invitations", "string"},
				param{"batch", "only the invitations of this batch", "string"},
				param{"session", "only the invitations to this session", "string"},
				param{"open", "only those without a final answer (true, 1, false, 0)", "string"},
			),
		jsonRoute("GET", "/v1/invitations/policy", "Whose invitations this node takes", s.getPolicy),
		takes[apitype.PolicyBody](jsonRoute("PUT", "/v1/invitations/policy", "Set whose invitations this node takes", s.setPolicy)),
		takes[apitype.BatchRequest](jsonRoute("POST", "/v1/invitations/cancel-unanswered", "Cancel the unanswered invitations of a batch", s.cancelUnanswered)),
		jsonRoute("GET", "/v1/invitations/{id}", "One invitation, with its inviter's card", s.showInvitation),
		jsonRoute("POST", "/v1/invitations/{id}/accept", "Accept a received invitation (runs the application's launch command)", answerInvitation(inv.Accept)),
		jsonRoute("POST", "/v1/invitations/{id}/decline", "Decline a received invitation", answerInvitation(inv.Decline)),
		jsonRoute("POST", "/v1/invitations/{id}/cancel", "Cancel a sent invitation that has no answer", answerInvitation(inv.Cancel)),
		takes[apitype.SessionCreateRequest](jsonRoute("POST", "/v1/sessions", "Host a new session for an application", s.createSession)),
		jsonRoute("GET", "/v1/sessions", "List the sessions hosted and joined", s.listSessions),
		jsonRoute("GET", "/v1/sessions/{id}", "One session", s.showSession),
		takes[apitype.SessionInviteRequest](jsonRoute("POST", "/v1/sessions/{id}/invite", "Invite peers to a hosted session", s.sessionInvite)),
		jsonRoute("POST", "/v1/sessions/{id}/cancel-unanswered", "Cancel the unanswered invitations of a hosted session", s.sessionOp(sess.CancelUnanswered)),
		jsonRoute("POST", "/v1/sessions/{id}/start", "Start a hosted session with those who accepted", s.sessionOp(sess.Start)),
		jsonRoute("POST", "/v1/sessions/{id}/end", "End a hosted session", s.sessionOp(sess.End)),
		takes[apitype.PeerRequest](jsonRoute("POST", "/v1/sessions/{id}/remove", "Remove a member from a hosted session", s.sessionRemove)),
		jsonRoute("POST", "/v1/sessions/{id}/leave", "Leave a session", s.sessionLeave),
		takes[apitype.SessionSendRequest](jsonRoute("POST", "/v1/sessions/{id}/send", "Send an application message to the session's members", s.sessionSend)),
		jsonRoute("GET", "/v1/sessions/{id}/messages", "The messages delivered in a session", s.sessionMessages).
			params(param{"after", "only messages with an index above this one", "integer"}),
		takes[apitype.HostRequestBody](jsonRoute("POST", "/v1/host-requests", "Ask a peer to host a session for an application and invite this node", s.hostRequest)),
		jsonRoute("GET", "/v1/host-requests", "The host requests received", s.listHostRequests),
		jsonRoute("POST", "/v1/host-requests/{id}/accept", "Accept a host request: create the session and invite its sender", s.answerHostRequest(true)),
		jsonRoute("POST", "/v1/host-requests/{id}/decline", "Decline a host request", s.answerHostRequest(false)),
		jsonRoute("GET", "/v1/web", "Where the daemon serves its web page, with the token that opens it", s.getWebPage).
			describe("The page is served on a loopback address to browsers that opened it with the token (open_url) once. Enabled is false when the daemon serves no page (--web off). The page itself cannot call this route, nor POST /v1/web/token."),
		jsonRoute("POST", "/v1/web/token", "Replace the web page's token: browsers that opened the page with the old one must open it again", s.rotateWebToken),
		{
			method: "GET", path: "/v1/events", summary: "The node's event stream (server-sent events)",
			description: eventsDescription,
			query: []param{
				{"types", "comma-separated event types or prefixes of them (\"session.\"); repeatable; default every type", "string"},
				{"last_event_id", "resume after this event, as the Last-Event-ID header does, for clients that cannot set headers", "integer"},
			},
			h: s.events,
		},
		{method: "GET", path: "/v1/openapi.json", summary: "This document: the API's contract in OpenAPI 3.1", h: serveOpenAPI},
	}
}

// handler is the server's HTTP handler: the routes, and JSON error bodies
// for requests that match none (404) or match a path with another method
// (405, with an Allow header).
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routes() {
		mux.HandleFunc(r.pattern(), r.h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			// The mux's own answer: a redirect (kept as it is), or a 404
			// or 405 in plain text, which becomes an error body.
			w = &muxErrorWriter{ResponseWriter: w, r: r}
		}
		mux.ServeHTTP(w, r)
	})
}

// muxErrorWriter turns the plain-text 404 and 405 answers of
// http.ServeMux into error bodies.
type muxErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (w *muxErrorWriter) WriteHeader(code int) {
	var e *apitype.Error
	method, path := sentence.Cut(w.r.Method, maxQuoted), sentence.Cut(w.r.URL.Path, maxQuoted)
	switch code {
	case http.StatusNotFound:
		e = &apitype.Error{Status: code, Code: apitype.CodeNotFound,
			Message: fmt.Sprintf("No API endpoint %s %s; see GET /v1/openapi.json.", method, path)}
	case http.StatusMethodNotAllowed:
		allow := w.Header().Get("Allow")
		e = &apitype.Error{Status: code, Code: apitype.CodeMethodNotAllowed,
			Message: fmt.Sprintf("%s takes %s, not %s.", path, strings.ReplaceAll(allow, ", ", " or "), method)}
	default:
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.swallow = true
	w.Header().Del("X-Content-Type-Options")
	writeError(w.ResponseWriter, w.r, nil, e)
}

func (w *muxErrorWriter) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// handle makes the handler of a JSON endpoint: it reads the request body
// (see readBody), then fn's result is encoded as the answer, its error as
// an error body.
func handle[T any](fn func(r *http.Request) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
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
	}
}

// serveOpenAPI answers with the API's OpenAPI document.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	setWriteDeadline(w)
	w.Header().Set("Content-Type", "application/json")
	w.Write(apitype.OpenAPI)
}
