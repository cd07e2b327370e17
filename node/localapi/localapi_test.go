package localapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/localapi"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/transport/quicreuse.(*reuse).gc"))
}

// serve starts a node with its API in a temporary home and returns a client.
func serve(t *testing.T, name string) (*node.Node, *client.Client, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pcapi") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := node.DefaultConfig(dir)
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Profile = contacts.Profile{DisplayName: name}
	cfg.EventBuffer = 4
	cfg.Scope = "internet" // no mDNS: its multicast would leave this machine
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := localapi.Listen(dir)
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	srv := localapi.Serve(n, l)
	t.Cleanup(func() {
		srv.Close()
		n.Close()
	})
	return n, client.New(dir), dir
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func code(err error) string {
	var e *apitype.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "not an API error: " + err.Error()
}

func TestErrorCodes(t *testing.T) {
	_, c, _ := serve(t, "Alice")
	_, err := c.Contact(ctx(t), "nobody")
	if code(err) != "contact_not_found" {
		t.Errorf("unknown contact: %v", err)
	}
	_, err = c.AddContact(ctx(t), apitype.AddContactRequest{Card: "-----BEGIN CERTIFICATE-----\nAAAA"})
	if code(err) != "card_truncated" {
		t.Errorf("truncated card: %v", err)
	}
	_, err = c.AddContact(ctx(t), apitype.AddContactRequest{})
	if code(err) != apitype.CodeBadRequest {
		t.Errorf("empty request: %v", err)
	}
	_, err = c.Endorse(ctx(t), apitype.EndorseRequest{Card: "x", Validity: "-1h"})
	if code(err) != apitype.CodeBadDuration {
		t.Errorf("bad validity: %v", err)
	}
	var e *apitype.Error
	if errors.As(err, &e) && (e.Status != http.StatusBadRequest || !strings.HasSuffix(e.Message, ".")) {
		t.Errorf("error %+v", e)
	}
}

func TestRawRequests(t *testing.T) {
	_, _, home := serve(t, "Alice")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", apitype.SocketPath(home))
	}}}
	defer hc.CloseIdleConnections()
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/v2/nothing", "", 404, "not_found"},
		{"DELETE", "/v1/id", "", 405, "method_not_allowed"},
		{"PUT", "/v1/contacts/Bob/card", "", 405, "method_not_allowed"},
		{"POST", "/v1/contacts", `{"app":"x"}`, 400, "bad_request"},
		{"GET", "/v1/events?last_event_id=x", "", 400, "bad_event_id"},
		{"POST", "/v1/contacts", "{not json", 400, "bad_request"},
		{"POST", "/v1/contacts", `{"card":"x","surprise":1}`, 400, "bad_request"},
		{"POST", "/v1/contacts", `{"card":"` + strings.Repeat("A", 300<<10) + `"}`, 400, "bad_request"},
		{"POST", "/v1/cards/check", `{"card":"garbage"}`, 422, "card_not_pem"},
	} {
		req, _ := http.NewRequest(tc.method, "http://x"+tc.path, strings.NewReader(tc.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), `"code":"`+tc.code+`"`) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s %s, want %d %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.code)
		}
		if tc.status == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without an Allow header", tc.method, tc.path)
		}
	}
}

func TestListenRefusesRunningDaemonAndClearsStaleSocket(t *testing.T) {
	_, _, home := serve(t, "Alice")
	if _, err := localapi.Listen(home); !errors.Is(err, localapi.ErrDaemonRunning) {
		t.Fatalf("second Listen: %v", err)
	}
	dir, _ := os.MkdirTemp("", "pcapi")
	defer os.RemoveAll(dir)
	// A socket file nobody listens on, as a killed daemon leaves it.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: apitype.SocketPath(dir), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	l2, err := localapi.Listen(dir)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l2.Close()
	if _, err := localapi.Listen(filepath.Join(dir, strings.Repeat("x", 120))); err == nil || !strings.Contains(err.Error(), "shorter --home") {
		t.Fatalf("long path: %v", err)
	}
}

func TestNoDaemon(t *testing.T) {
	c := client.New(t.TempDir())
	_, err := c.ID(ctx(t))
	if !client.IsNoDaemon(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestEventStreamDeliversChanges(t *testing.T) {
	_, a, _ := serve(t, "Alice")
	_, b, _ := serve(t, "Bob")
	s, err := a.Events(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	card, err := b.Card(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddContact(ctx(t), apitype.AddContactRequest{Card: card.Card}); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Next(ctx(t))
	if err != nil || ev.Type != "contact.changed" || !strings.Contains(string(ev.Data), card.PeerID.String()) {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
}

// next returns the next event of s within the test's context.
func next(t *testing.T, s *client.EventStream) apitype.Event {
	t.Helper()
	ev, err := s.Next(ctx(t))
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

// TestEventStreamResumes disconnects a stream, makes events happen, and
// reconnects after the last event it read: it gets exactly the missed
// ones, then the live ones.
func TestEventStreamResumes(t *testing.T) {
	_, a, _ := serve(t, "Alice")
	s, err := a.Events(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetName(ctx(t), "desk"); err != nil {
		t.Fatal(err)
	}
	first := next(t, s)
	if first.Type != apitype.EventMyName || first.Seq == 0 {
		t.Fatalf("first event %+v", first)
	}
	s.Close()
	// While disconnected: three name changes.
	for _, name := range []string{"one", "two", "three"} {
		if _, err := a.SetName(ctx(t), name); err != nil {
			t.Fatal(err)
		}
	}
	r, err := a.Events(ctx(t), client.After(s.LastSeq()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, want := range []string{"one", "two", "three"} {
		ev := next(t, r)
		var d apitype.MyNameEvent
		json.Unmarshal(ev.Data, &d)
		if ev.Seq != first.Seq+uint64(i)+1 || ev.Type != apitype.EventMyName || d.Name != want {
			t.Fatalf("missed event %d: %+v (%s), want seq %d, name %s", i, ev, ev.Data, first.Seq+uint64(i)+1, want)
		}
	}
	if _, err := a.SetName(ctx(t), "live"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, r); ev.Seq != first.Seq+4 || !strings.Contains(string(ev.Data), "live") {
		t.Fatalf("live event %+v", ev)
	}
}

// TestEventStreamPastTheBufferAndFilter: a Last-Event-ID newer than any
// event (the daemon restarted since) gets an events.lost event first; a
// ?types= filter lets through only the types asked for, and events.lost.
func TestEventStreamPastTheBufferAndFilter(t *testing.T) {
	_, a, _ := serve(t, "Alice")
	if _, err := a.SetName(ctx(t), "desk"); err != nil {
		t.Fatal(err)
	}
	s, err := a.Events(ctx(t), client.After(1<<40), client.Types("me.presence."))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := next(t, s)
	var lost apitype.EventsLostEvent
	if err := json.Unmarshal(ev.Data, &lost); err != nil || ev.Type != apitype.EventsLost || ev.Seq != 0 || lost.Reason != "restarted" || lost.From != 1<<40+1 {
		t.Fatalf("first event %+v %s, want events.lost (restarted)", ev, ev.Data)
	}
	if _, err := a.SetName(ctx(t), "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetPresence(ctx(t), apitype.Presence{Status: apitype.StatusBusy}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, s); ev.Type != apitype.EventMyPresence {
		t.Fatalf("filtered stream sent %+v", ev)
	}
}
