package localapi

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// requestTypes are the bodies the handlers decode, as they decode them:
// each makes a fresh value and, for wire types, turns it into the request.
var requestTypes = []struct {
	name   string
	decode func([]byte) (any, error)
}{
	{"AddContactRequest", wired[addContactWire]},
	{"UpdateContactRequest", wired[updateContactWire]},
	{"AddNearRequest", wired[addNearWire]},
	{"ScopeRequest", wiredErr[scopeWire]},
	{"PolicyBody", wiredErr[policyWire]},
	{"CardRequest", plain[apitype.CardRequest]},
	{"EndorseRequest", plain[apitype.EndorseRequest]},
	{"PingRequest", plain[apitype.PingRequest]},
	{"Presence", wired[presenceWire]},
	{"NameRequest", plain[apitype.NameRequest]},
	{"RegisteredApp", plain[apitype.RegisteredApp]},
	{"ObjectRequest", plain[apitype.ObjectRequest]},
	{"InviteRequest", plain[apitype.InviteRequest]},
	{"BatchRequest", plain[apitype.BatchRequest]},
	{"SessionCreateRequest", plain[apitype.SessionCreateRequest]},
	{"SessionInviteRequest", plain[apitype.SessionInviteRequest]},
	{"SessionSendRequest", plain[apitype.SessionSendRequest]},
	{"PeerRequest", plain[apitype.PeerRequest]},
	{"HostRequestBody", plain[apitype.HostRequestBody]},
	{"MeRequest", plain[apitype.MeRequest]},
}

func plain[T any](data []byte) (any, error) {
	var v T
	err := decodeJSON(data, &v)
	return v, err
}

func wired[W interface{ request() R }, R any](data []byte) (any, error) {
	var w W
	if err := decodeJSON(data, &w); err != nil {
		return nil, err
	}
	return w.request(), nil
}

func wiredErr[W interface{ request() (R, error) }, R any](data []byte) (any, error) {
	var w W
	if err := decodeJSON(data, &w); err != nil {
		return nil, err
	}
	return w.request()
}

// checkAPIError checks what every error of a decoder must be: an *apitype.Error
// with a 4xx status, a code, and one short sentence.
func checkAPIError(t *testing.T, err error) {
	t.Helper()
	var e *apitype.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is no *Error", err, err)
	}
	if e.Status < 400 || e.Status >= 500 || e.Code == "" || e.Code == apitype.CodeInternal {
		t.Fatalf("error %d %s: %s", e.Status, e.Code, e.Message)
	}
	checkMessage(t, e.Message)
}

func checkMessage(t *testing.T, msg string) {
	t.Helper()
	if len(msg) > maxMessage+300 || !strings.HasSuffix(msg, ".") {
		t.Fatalf("message of %d bytes: %.300q", len(msg), msg)
	}
}

// FuzzDecodeRequests feeds every request type's decoder: it never panics,
// every error is a 4xx *Error with a short message, and what decodes
// encodes again into a body that decodes.
func FuzzDecodeRequests(f *testing.F) {
	seeds := []string{
		`{"card":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n","nickname":"bob","watch":true,"watcher_permission":"blocked"}`,
		`{"nickname":"bob","watch":false,"watcher_permission":"allowed"}`,
		`{"watcher_permission":"maybe"}`,
		`{"watcher_permission":1}`,
		`{"scope":"nearme"}`, `{"scope":"all"}`, `{"scope":"near-me"}`, `{"scope":null}`, `{"scope":7}`,
		`{"policy":"contacts"}`, `{"policy":"everyone"}`, `{"policy":null}`, `{"policy":[]}`,
		`{"card":"x","validity":"8760h"}`, `{"card":"x","validity":"-1h"}`,
		`{"target":"Bob","count":3,"interval":"200ms"}`, `{"count":1e999}`, `{"count":-0}`, `{"count":1.5}`,
		`{"status":"on-the-phone","text":"later"}`, `{"status":3}`, `{"status":null}`, `{"status":"\u0000"}`,
		`{"endpoint_name":"desk"}`,
		`{"id":"org.example.chat","description":"Chat","data":"AAEC","launch":"chat --join","auto_accept":true,"auto_host":false}`,
		`{"data":"aGVsbG8="}`, `{"data":"!!"}`, `{"data":null}`, `{"data":[1,2]}`,
		`{"peers":["Bob","12D3KooWJdBK8bLPY4xPGhGxTR5ZUHy7avVGHFrfA3tZKSeGyJ8v"],"application_id":"org.example.chat","message":"hi","data":"AA==","timeout":"5m","session_id":"s"}`,
		`{"batch":"b"}`, `{"application_id":"org.example.chat"}`, `{"peers":["Bob"],"message":"m","timeout":"1h"}`,
		`{"peer":"Bob"}`, `{"peer":"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWJdBK8bLPY4xPGhGxTR5ZUHy7avVGHFrfA3tZKSeGyJ8v","application_id":"a","message":"m"}`,
		``, ` `, `null`, `[]`, `{}`, `{"a":1}`, `{"card":"x"} {"card":"y"}`, `{"card":"x"`, `{"card":"\ud800"}`, `"x"`, `1`,
		`{"card":"x","card":"y"}`, `{"CARD":"x"}`, `{"nickname":"` + strings.Repeat("n", 300) + `"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		rt := requestTypes[int(kind)%len(requestTypes)]
		v, err := rt.decode(data)
		if err != nil {
			checkAPIError(t, err)
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: decoded %+v does not encode: %v", rt.name, v, err)
		}
		if _, err := rt.decode(again); err != nil {
			t.Fatalf("%s: %s decodes to %+v, which encodes to %s, which does not decode: %v", rt.name, data, v, again, err)
		}
	})
}

// fuzzRoutes are the endpoints FuzzHandlers drives: all but those that
// reach out to other peers or the network at large (ping, locate, peer
// endpoint data and watches, host requests), change the sign-in scope
// (nearme would send multicast off this machine) or stream events. Their
// bodies are fuzzed by FuzzDecodeRequests.
var fuzzRoutes = []struct{ method, path string }{
	{"GET", "/v1/id"},
	{"GET", "/v1/contacts"},
	{"POST", "/v1/contacts"},
	{"GET", "/v1/contacts/{}"},
	{"PATCH", "/v1/contacts/{}"},
	{"DELETE", "/v1/contacts/{}"},
	{"GET", "/v1/contacts/{}/card"},
	{"POST", "/v1/cards/check"},
	{"POST", "/v1/cards/endorse"},
	{"GET", "/v1/near"},
	{"POST", "/v1/near/{}/contact"},
	{"GET", "/v1/me/endpoint"},
	{"PUT", "/v1/me/presence"},
	{"PUT", "/v1/me/name"},
	{"POST", "/v1/me/apps"},
	{"DELETE", "/v1/me/apps/{}"},
	{"PUT", "/v1/me/objects/{}"},
	{"DELETE", "/v1/me/objects/{}"},
	{"GET", "/v1/watching"},
	{"POST", "/v1/invitations"},
	{"GET", "/v1/invitations"},
	{"GET", "/v1/invitations/policy"},
	{"PUT", "/v1/invitations/policy"},
	{"POST", "/v1/invitations/cancel-unanswered"},
	{"GET", "/v1/invitations/{}"},
	{"POST", "/v1/invitations/{}/accept"},
	{"POST", "/v1/invitations/{}/decline"},
	{"POST", "/v1/invitations/{}/cancel"},
	{"POST", "/v1/sessions"},
	{"GET", "/v1/sessions"},
	{"GET", "/v1/sessions/{}"},
	{"POST", "/v1/sessions/{}/invite"},
	{"POST", "/v1/sessions/{}/cancel-unanswered"},
	{"POST", "/v1/sessions/{}/start"},
	{"POST", "/v1/sessions/{}/end"},
	{"POST", "/v1/sessions/{}/remove"},
	{"POST", "/v1/sessions/{}/send"},
	{"GET", "/v1/sessions/{}/messages"},
	{"GET", "/v1/host-requests"},
	{"POST", "/v1/host-requests/{}/accept"},
	{"POST", "/v1/host-requests/{}/decline"},
	{"DELETE", "/v1/nothing/{}"},
}

// handlerDeadline is how long FuzzHandlers waits for an answer: none of
// its routes waits for a peer, so a call that takes longer hangs.
const handlerDeadline = 20 * time.Second

func routeIndex(method, path string) uint8 {
	for i, r := range fuzzRoutes {
		if r.method == method && r.path == path {
			return uint8(i)
		}
	}
	panic("no route " + method + " " + path)
}

// FuzzHandlers drives the real handlers, through the server's mux, of a
// real node in a temporary home (signed in to the Internet scope, with no
// relays or bootstrap peers, so it reaches nobody): no request is answered
// with a 500, and every error answer is an error body with a code and a
// short message.
func FuzzHandlers(f *testing.F) {
	dir, err := os.MkdirTemp("", "pcfuzz")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	cfg := node.DefaultConfig(dir)
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Profile = contacts.Profile{DisplayName: "Alice"}
	cfg.Scope = "internet"
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		f.Fatal(err)
	}
	s := newServer(n)
	f.Cleanup(func() {
		s.closeEvents()
		n.Close()
	})
	mux := s.handler()

	// A contact, an application and a session for the seeds to name.
	bobID, err := contacts.GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	cert, err := contacts.NewCertificate(bobID, contacts.Profile{DisplayName: "Bob"}, now)
	if err != nil {
		f.Fatal(err)
	}
	bob, err := contacts.NewCard(bobID, []*x509.Certificate{cert}, nil, now)
	if err != nil {
		f.Fatal(err)
	}
	bobCard, _ := json.Marshal(string(bob.Marshal()))
	if _, _, _, err := n.AddCard(bob.Marshal(), node.AddOptions{}); err != nil {
		f.Fatal(err)
	}
	if err := n.Publish().RegisterApp(publish.RegisteredApp{Application: endpoint.Application{ID: "org.example.chat", Description: "Chat"}}); err != nil {
		f.Fatal(err)
	}
	sess, err := n.Sessions().Create("org.example.chat")
	if err != nil {
		f.Fatal(err)
	}

	add := func(method, path, param, query, body string) {
		f.Add(routeIndex(method, path), param, query, []byte(body))
	}
	add("GET", "/v1/id", "", "", "")
	add("POST", "/v1/contacts", "", "", `{"card":`+string(bobCard)+`,"nickname":"Bobby","watcher_permission":"blocked"}`)
	add("POST", "/v1/contacts", "", "", `{"card":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}`)
	add("GET", "/v1/contacts/{}", "Bob", "", "")
	add("PATCH", "/v1/contacts/{}", "Bob", "", `{"nickname":"Bob","watch":false,"watcher_permission":"allowed"}`)
	add("PATCH", "/v1/contacts/{}", "Bo", "", `{"watcher_permission":"maybe"}`)
	add("DELETE", "/v1/contacts/{}", "nobody", "", "")
	add("GET", "/v1/contacts/{}/card", bobID.ID().String(), "", "")
	add("POST", "/v1/cards/check", "", "", `{"card":`+string(bobCard)+`}`)
	add("POST", "/v1/cards/endorse", "", "", `{"card":`+string(bobCard)+`,"validity":"24h"}`)
	add("POST", "/v1/near/{}/contact", "Carol", "", `{"nickname":"C"}`)
	add("PUT", "/v1/me/presence", "", "", `{"status":"busy","text":"call"}`)
	add("PUT", "/v1/me/presence", "", "", `{"status":"offline"}`)
	add("PUT", "/v1/me/name", "", "", `{"endpoint_name":"desk"}`)
	add("POST", "/v1/me/apps", "", "", `{"id":"org.example.draw","description":"Draw","data":"AAE=","launch":"draw","auto_accept":true}`)
	add("DELETE", "/v1/me/apps/{}", "org.example.draw", "", "")
	add("PUT", "/v1/me/objects/{}", "pic", "", `{"data":"aGVsbG8="}`)
	add("DELETE", "/v1/me/objects/{}", "pic", "", "")
	add("POST", "/v1/invitations", "", "", `{"peers":["Bob"],"application_id":"org.example.chat","message":"hi","data":"AA==","timeout":"5m"}`)
	add("POST", "/v1/invitations", "", "", `{"peers":["Bob","Bob"],"application_id":"org.example.none","timeout":"25h"}`)
	add("GET", "/v1/invitations", "", "direction=sent&open=true&batch=b&session="+sess.ID, "")
	add("GET", "/v1/invitations", "", "direction=up&open=maybe", "")
	add("PUT", "/v1/invitations/policy", "", "", `{"policy":"contacts"}`)
	add("PUT", "/v1/invitations/policy", "", "", `{"policy":"everyone"}`)
	add("POST", "/v1/invitations/cancel-unanswered", "", "", `{"batch":"b"}`)
	add("GET", "/v1/invitations/{}", "a", "", "")
	add("POST", "/v1/invitations/{}/accept", "0", "", "")
	add("POST", "/v1/sessions", "", "", `{"application_id":"org.example.chat"}`)
	add("GET", "/v1/sessions/{}", sess.ID, "", "")
	add("POST", "/v1/sessions/{}/invite", sess.ID, "", `{"peers":["Bob"],"message":"join","timeout":"1m"}`)
	add("POST", "/v1/sessions/{}/start", sess.ID[:4], "", "")
	add("POST", "/v1/sessions/{}/remove", sess.ID, "", `{"peer":"Bob"}`)
	add("POST", "/v1/sessions/{}/send", sess.ID, "", `{"data":"aGk="}`)
	add("GET", "/v1/sessions/{}/messages", sess.ID, "after=0", "")
	add("GET", "/v1/sessions/{}/messages", sess.ID, "after=-1", "")
	add("POST", "/v1/host-requests/{}/accept", "x", "", "")
	add("DELETE", "/v1/nothing/{}", "x", "", "{")

	f.Fuzz(func(t *testing.T, route uint8, param, query string, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		if strings.Contains(param+query+string(body), "/ip") || strings.Contains(param+query+string(body), "/dns") {
			t.Skip("a multiaddr could make the node dial out")
		}
		if param == "" {
			param = "x"
		}
		target := strings.ReplaceAll(r.path, "{}", url.PathEscape(param))
		if query != "" {
			target += "?" + url.PathEscape(query)
			target = strings.NewReplacer("%3D", "=", "%26", "&").Replace(target)
		}
		req, err := http.NewRequest(r.method, "http://x"+target, strings.NewReader(string(body)))
		if err != nil {
			t.Skip(err)
		}
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			mux.ServeHTTP(w, req)
		}()
		select {
		case <-done:
		case <-time.After(handlerDeadline):
			buf := make([]byte, 1<<20)
			t.Fatalf("%s %s %.200q: no answer within %v\n%s", r.method, target, body, handlerDeadline, buf[:runtime.Stack(buf, true)])
		}
		if w.Code == http.StatusInternalServerError {
			t.Fatalf("%s %s %.200q: %d %.500s", r.method, target, body, w.Code, w.Body)
		}
		if w.Code >= 400 && w.Code != http.StatusMethodNotAllowed && w.Header().Get("Location") == "" {
			var eb apitype.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error == nil || eb.Error.Code == "" {
				t.Fatalf("%s %s: %d answer is no error body: %.300q", r.method, target, w.Code, w.Body)
			}
			checkMessage(t, eb.Error.Message)
		}
	})
}
