package localapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// rawClient is an HTTP client on the API socket of home that sends
// whatever it is given.
func rawClient(t *testing.T, home string) *http.Client {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", apitype.SocketPath(home))
	}}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// call sends a raw request and returns the status and the error body (if
// any).
func call(t *testing.T, hc *http.Client, method, path, body string) (int, *apitype.Error, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, "http://x"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	var eb struct {
		Error *apitype.Error `json:"error"`
	}
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error == nil {
			t.Fatalf("%s %s: %d with a body that is no error: %.200q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, eb.Error, string(raw)
}

// TestBadValues sends every handler bad enums and values: each is a 400
// with the value's own code, and the message repeats at most a short
// prefix of what was sent.
func TestBadValues(t *testing.T) {
	_, a, home := serve(t, "Alice")
	_, b, _ := serve(t, "Bob")
	card, err := b.Card(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddContact(ctx(t), apitype.AddContactRequest{Card: card.Card}); err != nil {
		t.Fatal(err)
	}
	if err := a.RegisterApp(ctx(t), apitype.RegisteredApp{ID: "org.example.chat", Description: "Chat"}); err != nil {
		t.Fatal(err)
	}
	sess, err := a.CreateSession(ctx(t), "org.example.chat")
	if err != nil {
		t.Fatal(err)
	}
	sid := sess.ID
	long := strings.Repeat("x", 100<<10)
	hc := rawClient(t, home)

	for _, tc := range []struct {
		name, method, path, body string
		code                     string
	}{
		{"policy unknown", "PUT", "/v1/invitations/policy", `{"policy":"everyone"}`, apitype.CodeBadPolicy},
		{"policy empty", "PUT", "/v1/invitations/policy", `{"policy":""}`, apitype.CodeBadPolicy},
		{"policy null", "PUT", "/v1/invitations/policy", `{"policy":null}`, apitype.CodeBadPolicy},
		{"policy missing", "PUT", "/v1/invitations/policy", `{}`, apitype.CodeBadPolicy},
		{"policy number", "PUT", "/v1/invitations/policy", `{"policy":2}`, apitype.CodeBadPolicy},
		{"policy long", "PUT", "/v1/invitations/policy", `{"policy":"` + long + `"}`, apitype.CodeBadPolicy},
		{"status unknown", "PUT", "/v1/me/presence", `{"status":"asleep"}`, apitype.CodeBadStatus},
		{"status number", "PUT", "/v1/me/presence", `{"status":3}`, apitype.CodeBadStatus},
		{"status array", "PUT", "/v1/me/presence", `{"status":["busy"]}`, apitype.CodeBadStatus},
		{"status long", "PUT", "/v1/me/presence", `{"status":"` + long + `"}`, apitype.CodeBadStatus},
		{"presence text", "PUT", "/v1/me/presence", `{"status":"busy","text":"` + strings.Repeat("t", 256) + `"}`, "text_too_long"},
		{"scope unknown", "POST", "/v1/signin", `{"scope":"everywhere"}`, apitype.CodeBadScope},
		{"scope none", "POST", "/v1/signin", `{"scope":"none"}`, apitype.CodeBadScope},
		{"scope missing", "POST", "/v1/signin", `{}`, apitype.CodeBadScope},
		{"scope number", "POST", "/v1/signout", `{"scope":1}`, apitype.CodeBadScope},
		{"scope long", "POST", "/v1/signout", `{"scope":"` + long + `"}`, apitype.CodeBadScope},
		{"direction", "GET", "/v1/invitations?direction=up", ``, apitype.CodeBadDirection},
		{"open", "GET", "/v1/invitations?open=maybe", ``, apitype.CodeBadFlag},
		{"permission add", "POST", "/v1/contacts", `{"card":"x","watcher_permission":"maybe"}`, apitype.CodeBadPermission},
		{"permission number", "POST", "/v1/contacts", `{"card":"x","watcher_permission":1}`, apitype.CodeBadPermission},
		{"permission update", "PATCH", "/v1/contacts/Bob", `{"watcher_permission":"` + long + `"}`, apitype.CodeBadPermission},
		{"permission near", "POST", "/v1/near/Bob/contact", `{"watcher_permission":"maybe"}`, apitype.CodeBadPermission},
		{"nickname empty", "PATCH", "/v1/contacts/Bob", `{"nickname":""}`, "bad_nickname"},
		{"watch type", "PATCH", "/v1/contacts/Bob", `{"watch":"yes"}`, apitype.CodeBadRequest},
		{"validity", "POST", "/v1/cards/endorse", `{"card":"x","validity":"forever"}`, apitype.CodeBadDuration},
		{"validity huge", "POST", "/v1/cards/endorse", `{"card":"x","validity":"9999999h"}`, apitype.CodeBadDuration},
		{"count", "POST", "/v1/ping", `{"target":"Bob","count":1000}`, apitype.CodeBadCount},
		{"count negative", "POST", "/v1/ping", `{"target":"Bob","count":-1}`, apitype.CodeBadCount},
		{"count overflow", "POST", "/v1/ping", `{"target":"Bob","count":1e99}`, apitype.CodeBadRequest},
		{"interval", "POST", "/v1/ping", `{"target":"Bob","interval":"-1s"}`, apitype.CodeBadDuration},
		{"target", "POST", "/v1/ping", `{"target":"/ip4/127.0.0.1"}`, "bad_target"},
		{"invite timeout", "POST", "/v1/invitations", `{"peers":["Bob"],"application_id":"org.example.chat","timeout":"48h"}`, apitype.CodeBadTimeout},
		{"invite timeout text", "POST", "/v1/invitations", `{"peers":["Bob"],"application_id":"org.example.chat","timeout":"soon"}`, apitype.CodeBadTimeout},
		{"invite no peers", "POST", "/v1/invitations", `{"peers":[],"application_id":"org.example.chat"}`, "no_peers"},
		{"invite message", "POST", "/v1/invitations", `{"peers":["Bob"],"application_id":"org.example.chat","message":"` + strings.Repeat("m", 256) + `"}`, "message_too_long"},
		{"invite data", "POST", "/v1/invitations", `{"peers":["Bob"],"application_id":"org.example.chat","data":"!!"}`, apitype.CodeBadRequest},
		{"batch", "POST", "/v1/invitations/cancel-unanswered", `{}`, apitype.CodeBadBatch},
		{"session app", "POST", "/v1/sessions", `{"application_id":""}`, "bad_id"},
		{"session timeout", "POST", "/v1/sessions/" + sid + "/invite", `{"peers":["Bob"],"timeout":"0s"}`, apitype.CodeBadTimeout},
		{"after", "GET", "/v1/sessions/" + sid + "/messages?after=x", ``, apitype.CodeBadIndex},
		{"app id", "POST", "/v1/me/apps", `{"id":"","description":"x"}`, "bad_id"},
		{"app launch", "POST", "/v1/me/apps", `{"id":"a.b","launch":"` + strings.Repeat("l", 5000) + `"}`, "launch_too_long"},
		{"object id", "PUT", "/v1/me/objects/%20bad", `{"data":"AAAA"}`, "bad_id"},
		{"object data", "PUT", "/v1/me/objects/pic", `{"data":"!!"}`, apitype.CodeBadRequest},
		{"name", "PUT", "/v1/me/name", `{"endpoint_name":"` + strings.Repeat("n", 256) + `"}`, "text_too_long"},
		{"unknown field", "PUT", "/v1/me/name", `{"` + long + `":1}`, apitype.CodeBadRequest},
		{"trailing data", "PUT", "/v1/me/name", `{"endpoint_name":"desk"} {}`, apitype.CodeBadRequest},
		{"not an object", "PUT", "/v1/me/name", `[1,2]`, apitype.CodeBadRequest},
		{"empty body", "PUT", "/v1/me/name", ``, apitype.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, e, raw := call(t, hc, tc.method, tc.path, tc.body)
			if status != http.StatusBadRequest || e == nil || e.Code != tc.code {
				t.Fatalf("%d %.300s, want 400 %s", status, raw, tc.code)
			}
			if len(e.Message) > 300 || strings.Contains(e.Message, strings.Repeat("x", 100)) {
				t.Errorf("message repeats the request: %.400q", e.Message)
			}
		})
	}
}
