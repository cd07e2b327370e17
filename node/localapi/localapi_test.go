package localapi_test

import (
	"context"
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
		if resp.StatusCode != tc.status || !strings.Contains(string(body), `"code":"`+tc.code+`"`) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.code)
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
	ev, err := s.Next()
	if err != nil || ev.Type != "contact.changed" || !strings.Contains(string(ev.Data), card.PeerID.String()) {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
}
