package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/schema_validation"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
)

var update = flag.Bool("update", false, "rewrite apitype/openapi.json")

// startNode runs a node with its API in a temporary home (short: unix
// socket paths are limited) until the test ends.
func startNode(t *testing.T, name string) (*node.Node, *Server, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pcoapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := node.DefaultConfig(dir)
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Profile = contacts.Profile{DisplayName: name}
	cfg.Scope = "internet" // no mDNS: its multicast would leave this machine
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(dir)
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	srv := Serve(n, l)
	t.Cleanup(func() {
		srv.Close()
		n.Close()
	})
	return n, srv, dir
}

// TestOpenAPIUpToDate checks that apitype/openapi.json is the document the
// route table and the contract's types and comments make (-update writes
// it), that libopenapi reads it as a valid OpenAPI 3.1 document, and that
// GET /v1/openapi.json serves it.
func TestOpenAPIUpToDate(t *testing.T) {
	_, srv, home := startNode(t, "Alice")
	want := openAPIDocument(t, srv.routes())
	if *update {
		if err := os.WriteFile(filepath.Join("apitype", "openapi.json"), want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("wrote apitype/openapi.json; build again to embed it")
	} else if !bytes.Equal(want, apitype.OpenAPI) {
		t.Fatal("apitype/openapi.json is out of date: run go test ./node/localapi -run TestOpenAPIUpToDate -update")
	}
	doc, err := libopenapi.NewDocument(want)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doc.BuildV3Model(); err != nil {
		t.Fatalf("libopenapi cannot build the model: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	defer v.Release()
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s %s: %s", se.KeywordLocation, se.FieldPath, se.Reason)
			}
		}
	}
	served, err := client.New(home).OpenAPI(context.Background())
	if err != nil || !bytes.Equal(bytes.TrimSpace(served), bytes.TrimSpace(apitype.OpenAPI)) {
		t.Errorf("GET /v1/openapi.json does not serve the document: %v", err)
	}
}

// TestOpenAPIHasEveryRoute walks the routes the server registers: each is
// in the document with its method, path parameters, request body and
// answer, and the document has no operation the server does not
// register. Every error code of the server's mappings is in the
// document's list of codes.
func TestOpenAPIHasEveryRoute(t *testing.T) {
	_, srv, _ := startNode(t, "Alice")
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name, In string
			} `json:"parameters"`
			RequestBody *json.RawMessage           `json:"requestBody"`
			Responses   map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
		Codes []struct {
			Code string `json:"code"`
		} `json:"x-error-codes"`
	}
	if err := json.Unmarshal(apitype.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, r := range srv.routes() {
		registered[r.pattern()] = true
		op, ok := doc.Paths[r.path][strings.ToLower(r.method)]
		if !ok {
			t.Errorf("%s is not in the document", r.pattern())
			continue
		}
		for _, m := range pathParam.FindAllStringSubmatch(r.path, -1) {
			if !slices.ContainsFunc(op.Parameters, func(p struct{ Name, In string }) bool { return p.Name == m[1] && p.In == "path" }) {
				t.Errorf("%s: the document lacks path parameter %s", r.pattern(), m[1])
			}
		}
		for _, q := range r.query {
			if !slices.ContainsFunc(op.Parameters, func(p struct{ Name, In string }) bool { return p.Name == q.name && p.In == "query" }) {
				t.Errorf("%s: the document lacks query parameter %s", r.pattern(), q.name)
			}
		}
		if (r.body != nil) != (op.RequestBody != nil) {
			t.Errorf("%s: request body in the code %v, in the document %v", r.pattern(), r.body != nil, op.RequestBody != nil)
		}
		for _, status := range []string{"200", "4XX", "5XX"} {
			if _, ok := op.Responses[status]; !ok {
				t.Errorf("%s: the document has no %s answer", r.pattern(), status)
			}
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !registered[methodOf[method]+" "+path] {
				t.Errorf("the document has %s %s, which the server does not register", method, path)
			}
		}
	}
	for _, m := range mappings {
		if !slices.ContainsFunc(doc.Codes, func(c struct {
			Code string `json:"code"`
		}) bool {
			return c.Code == m.code
		}) {
			t.Errorf("error code %s is not in the document", m.code)
		}
	}
}

// validatingProxy serves the API of home on a socket of its own and
// checks every request and answer that passes against the document, with
// libopenapi-validator. It records the routes it saw.
type validatingProxy struct {
	t       *testing.T
	v       validator.Validator
	target  *http.Client
	routes  *http.ServeMux
	mu      sync.Mutex
	covered map[string]bool
	srv     *http.Server
	home    string
}

func newValidatingProxy(t *testing.T, v validator.Validator, routes []route, home string) *validatingProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "pcproxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &validatingProxy{t: t, v: v, routes: http.NewServeMux(), covered: map[string]bool{}, home: dir,
		target: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", apitype.SocketPath(home))
		}}}}
	for _, r := range routes {
		p.routes.HandleFunc(r.pattern(), func(http.ResponseWriter, *http.Request) {})
	}
	l, err := net.Listen("unix", apitype.SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(l)
	t.Cleanup(func() {
		p.srv.Close()
		p.target.CloseIdleConnections()
	})
	return p
}

func (p *validatingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	out, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://peercollab"+r.URL.RequestURI(), bytes.NewReader(body))
	out.Header = r.Header.Clone()
	resp, err := p.target.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)

	_, pattern := p.routes.Handler(r)
	if pattern == "" {
		return // 404 and 405: checked by TestRawRequests
	}
	p.mu.Lock()
	p.covered[pattern] = true
	p.mu.Unlock()
	req, _ := http.NewRequest(r.Method, "http://peercollab"+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	if ok, errs := p.v.ValidateHttpRequestResponse(req, resp); !ok {
		for _, e := range errs {
			reasons := []string{}
			for _, se := range e.SchemaValidationErrors {
				reasons = append(reasons, se.FieldPath+": "+se.Reason)
			}
			p.t.Errorf("%s %s (%d): %s: %s %v\nbody: %.300s\nanswer: %.600s", r.Method, r.URL.RequestURI(), resp.StatusCode, e.Message, e.Reason, reasons, body, answer)
		}
	}
}

// TestOpenAPIValidatesRealAnswers drives two real nodes through the
// client, behind a proxy that validates every request and answer against
// the document with libopenapi-validator (formats and base64 content
// checked too), and the events of the stream against the Event schema.
// Every route must be seen.
func TestOpenAPIValidatesRealAnswers(t *testing.T) {
	doc, err := libopenapi.NewDocument(apitype.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions(), config.WithContentAssertions())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	defer v.Release()
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	eventSchema := model.Model.Components.Schemas.GetOrZero("Event").Schema()
	sv := schema_validation.NewSchemaValidator(config.WithFormatAssertions(), config.WithContentAssertions())
	defer sv.Release()

	_, aliceSrv, aliceHome := startNode(t, "Alice")
	bobNode, _, bobHome := startNode(t, "Bob")
	pa := newValidatingProxy(t, v, aliceSrv.routes(), aliceHome)
	pb := newValidatingProxy(t, v, aliceSrv.routes(), bobHome)
	a, b := client.New(pa.home), client.New(pb.home)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The event stream, straight from Alice's socket: each event is
	// checked against the Event schema.
	stream, err := client.New(aliceHome).Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	seen := map[string]bool{}
	var seenMu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			ev, err := stream.Next(ctx)
			if err != nil {
				return
			}
			data, _ := json.Marshal(ev)
			if ok, errs := sv.ValidateSchemaBytes(eventSchema, data); !ok {
				for _, e := range errs {
					t.Errorf("event %s: %s %s %.500s", ev.Type, e.Message, e.Reason, data)
				}
			}
			seenMu.Lock()
			seen[ev.Type] = true
			seenMu.Unlock()
		}
	})
	defer func() { stream.Close(); wg.Wait() }()

	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// Calls that may fail: their error answers are validated too.
	may := func(string, error) {}

	aliceID, err := a.ID(ctx)
	must("id", err)
	bobID, err := b.ID(ctx)
	must("bob id", err)
	_, err = a.Version(ctx)
	must("version", err)
	_, err = a.Doctor(ctx)
	must("doctor", err)
	_, err = a.LogLevels(ctx)
	must("log", err)
	_, err = a.SetLogLevel(ctx, "error", "peercollab/localapi")
	must("log level", err)
	_, err = a.SetLogLevel(ctx, "loud", "")
	may("bad log level", err)
	_, err = a.OpenAPI(ctx)
	must("openapi", err)

	aliceCard, err := a.Card(ctx)
	must("card", err)
	bobCard, err := b.Card(ctx)
	must("bob card", err)
	_, err = a.CheckCard(ctx, []byte(bobCard.Card))
	must("check card", err)
	_, err = a.AddContact(ctx, apitype.AddContactRequest{Card: bobCard.Card})
	must("add contact", err)
	_, err = b.AddContact(ctx, apitype.AddContactRequest{Card: aliceCard.Card})
	must("bob add contact", err)
	_, err = a.Contacts(ctx)
	must("contacts", err)
	_, err = a.Contact(ctx, "Bob")
	must("contact", err)
	nick := "Bobby"
	_, err = a.UpdateContact(ctx, "Bob", apitype.UpdateContactRequest{Nickname: &nick})
	must("update contact", err)
	_, err = a.ExportContact(ctx, "Bobby")
	must("export", err)
	_, err = a.Endorse(ctx, apitype.EndorseRequest{Card: bobCard.Card, Validity: "24h"})
	must("endorse", err)
	_, err = a.Locate(ctx, "Bobby")
	may("locate (no DHT)", err)
	_, err = a.Ping(ctx, apitype.PingRequest{Target: bobID.PeerID.String(), Count: 1})
	must("ping", err)

	_, err = a.Scope(ctx)
	must("scope", err)
	_, err = a.SignOut(ctx, apitype.ScopeInternet)
	must("sign out", err)
	_, err = a.SignIn(ctx, apitype.ScopeInternet)
	must("sign in", err)
	_, err = a.Near(ctx)
	may("near (not signed in to nearme)", err)
	_, err = a.AddNear(ctx, "Carol", apitype.AddNearRequest{})
	may("add near", err)

	_, err = a.SetPresence(ctx, apitype.Presence{Status: apitype.StatusBusy, Text: "writing"})
	must("presence", err)
	_, err = a.SetName(ctx, "desk")
	must("name", err)
	email := "a@example.org"
	_, err = a.SetMe(ctx, apitype.MeRequest{Email: &email})
	must("me", err)
	for _, c := range []*client.Client{a, b} {
		must("register", c.RegisterApp(ctx, apitype.RegisteredApp{ID: "org.example.chat", Description: "Chat", Data: []byte{0, 1, 2}, AutoHost: true}))
	}
	must("register draw", a.RegisterApp(ctx, apitype.RegisteredApp{ID: "org.example.draw", Description: "Draw"}))
	must("remove app", a.RemoveApp(ctx, "org.example.draw"))
	must("object", a.SetObject(ctx, "pic", []byte("hello")))
	_, err = a.MyEndpoint(ctx)
	must("my endpoint", err)
	must("remove object", a.RemoveObject(ctx, "pic"))
	_, err = b.PeerEndpoint(ctx, "Alice")
	must("peer endpoint", err)
	_, err = b.Watch(ctx, "Alice")
	must("watch", err)
	_, err = b.Watching(ctx)
	must("watching", err)
	must("unwatch", b.Unwatch(ctx, "Alice"))
	must("forget", b.ForgetEndpoint(ctx, "Alice"))

	_, err = a.InvitationPolicy(ctx)
	must("policy", err)
	_, err = b.SetInvitationPolicy(ctx, apitype.PolicyAnyone)
	must("set policy", err)
	list, err := a.Invite(ctx, apitype.InviteRequest{Peers: []string{"Bobby"}, AppID: "org.example.chat", Message: "hi", Data: []byte("x"), Timeout: "1m"})
	must("invite", err)
	_, err = a.Invitations(ctx, apitype.Sent, list.Batch, "", true)
	must("invitations", err)
	_, err = a.Invitation(ctx, list.Invitations[0].ID)
	must("invitation", err)
	_, err = a.CancelUnanswered(ctx, list.Batch)
	must("cancel unanswered", err)
	_, err = a.AnswerInvitation(ctx, list.Invitations[0].ID, "cancel")
	may("cancel (answered already)", err)
	list, err = a.Invite(ctx, apitype.InviteRequest{Peers: []string{"Bobby"}, AppID: "org.example.chat"})
	must("invite again", err)
	waitInvitation(t, ctx, b, "")
	got, err := b.Invitations(ctx, apitype.Received, "", "", true)
	must("bob's invitations", err)
	for _, inv := range got.Invitations {
		_, err = b.AnswerInvitation(ctx, inv.ID, "decline")
		must("decline", err)
	}

	sess, err := a.CreateSession(ctx, "org.example.chat")
	must("create session", err)
	_, err = a.Sessions(ctx)
	must("sessions", err)
	_, err = a.Session(ctx, sess.ID)
	must("session", err)
	_, err = a.SessionInvite(ctx, sess.ID, apitype.SessionInviteRequest{Peers: []string{"Bobby"}, Message: "join"})
	must("session invite", err)
	waitInvitation(t, ctx, b, sess.ID)
	got, err = b.Invitations(ctx, apitype.Received, "", sess.ID, true)
	must("bob's session invitations", err)
	for _, i := range got.Invitations {
		_, err = b.AnswerInvitation(ctx, i.ID, "accept")
		must("accept", err)
	}
	_, err = a.SessionOp(ctx, sess.ID, "cancel-unanswered")
	must("session cancel-unanswered", err)
	_, err = a.SessionOp(ctx, sess.ID, "start")
	must("start", err)
	_, err = a.SessionSend(ctx, sess.ID, []byte("hello"))
	must("send", err)
	_, err = a.SessionMessages(ctx, sess.ID, 0)
	must("messages", err)
	_, err = b.SessionOp(ctx, sess.ID, "leave")
	may("leave", err)
	_, err = a.SessionRemove(ctx, sess.ID, "Bobby")
	may("remove", err)
	_, err = a.SessionOp(ctx, sess.ID, "end")
	must("end", err)

	_, err = b.RequestHost(ctx, apitype.HostRequestBody{Peer: "Alice", AppID: "org.example.chat"})
	may("host request", err)
	reqs, err := a.HostRequests(ctx)
	must("host requests", err)
	_, err = a.AnswerHostRequest(ctx, "none", true)
	may("accept host request", err)
	_, err = a.AnswerHostRequest(ctx, "none", false)
	may("decline host request", err)
	_ = reqs
	_, err = a.WebPage(ctx)
	must("web page", err)
	_, err = a.RotateWebToken(ctx)
	may("rotate web token", err)
	// Bob's node becomes a device of Alice; Alice revokes it.
	_, err = a.Devices(ctx)
	must("devices", err)
	link, err := b.LinkDevice(ctx, apitype.DeviceLinkRequest{Name: "Bob's node"})
	must("device link", err)
	approved, err := a.ApproveDevice(ctx, []byte(link.Request))
	must("device approve", err)
	_, err = b.JoinDevice(ctx, []byte(approved.Grant))
	must("device join", err)
	_, err = a.RevokeDevice(ctx, "Bob's node")
	must("device revoke", err)
	must("remove contact", a.RemoveContact(ctx, "Bobby"))
	_ = bobNode
	_ = aliceID

	covered := map[string]bool{"GET /v1/events": true}
	for _, p := range []*validatingProxy{pa, pb} {
		p.mu.Lock()
		for k := range p.covered {
			covered[k] = true
		}
		p.mu.Unlock()
	}
	for _, r := range aliceSrv.routes() {
		if !covered[r.pattern()] {
			t.Errorf("%s was not exercised", r.pattern())
		}
	}
	seenMu.Lock()
	defer seenMu.Unlock()
	if len(seen) < 5 {
		t.Errorf("only %d event types seen: %v", len(seen), seen)
	}
	t.Logf("event types validated: %v", fmt.Sprint(slices.Sorted(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	})))
}

// waitInvitation waits until c holds an unanswered received invitation
// (to session, if not empty).
func waitInvitation(t *testing.T, ctx context.Context, c *client.Client, session string) {
	t.Helper()
	for {
		list, err := c.Invitations(ctx, apitype.Received, "", session, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Invitations) > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no invitation arrived")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
