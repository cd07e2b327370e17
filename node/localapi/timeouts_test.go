package localapi_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/localapi"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
)

// serveWith is serve with a server of the caller's making.
func serveWith(t *testing.T, name string, start func(*node.Node, net.Listener) *localapi.Server) (*node.Node, *client.Client, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pcapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := node.DefaultConfig(dir)
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Profile = contacts.Profile{DisplayName: name}
	cfg.Scope = "internet"
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := localapi.Listen(dir)
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	srv := start(n, l)
	t.Cleanup(func() {
		srv.Close()
		n.Close()
	})
	return n, client.New(dir), dir
}

// nextEvent waits for the next event of type typ on s, within d.
func nextEvent(t *testing.T, s *client.EventStream, typ string, d time.Duration) apitype.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		ev, err := s.Next(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no %s event within %v", typ, d)
		}
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		if ev.Type == typ {
			return ev
		}
	}
}

// TestSlowClientsAreCut opens 300 connections that send a request body a
// byte a second and 50 that send a header that way, against the daemon's
// real timeouts (so it takes their length, about ten seconds): the server closes every one within its timeout, while an
// event stream opened before them stays connected and delivers events.
func TestSlowClientsAreCut(t *testing.T) {
	const slowBodies, slowHeaders = 300, 50
	_, c, home := serveWith(t, "Alice", localapi.Serve)
	streamCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := c.Events(streamCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opened := time.Now()

	conns := make([]net.Conn, 0, slowBodies+slowHeaders)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range slowBodies + slowHeaders {
		conn, err := net.Dial("unix", apitype.SocketPath(home))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		// Bodies go to an endpoint, to no endpoint (404), and to an endpoint
		// by the wrong method (405, which the ServeMux answers itself).
		route := []string{"POST /v1/contacts", "POST /v1/nothing", "PUT /v1/id"}[i%3]
		head := route + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
		if i >= slowBodies {
			head = "POST /v1/contacts HTTP/1.1\r\nHost: x\r\n"
		}
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
	}
	// Every connection is read until the server closes it.
	closed := make(chan time.Duration, len(conns))
	for _, conn := range conns {
		go func() {
			io.Copy(io.Discard, conn)
			closed <- time.Since(opened)
		}()
	}
	// One byte a second on each, until the test ends.
	stop := make(chan struct{})
	var trickle sync.WaitGroup
	trickle.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, conn := range conns {
					conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
					conn.Write([]byte("x"))
				}
			}
		}
	})
	defer func() {
		close(stop)
		trickle.Wait()
	}()

	deadline := time.After(localapi.BodyTimeout + 20*time.Second)
	var last time.Duration
	for range conns {
		select {
		case d := <-closed:
			last = max(last, d)
		case <-deadline:
			t.Fatalf("slow connections still open after %v", localapi.BodyTimeout+20*time.Second)
		}
	}
	t.Logf("%d slow connections closed within %v (body timeout %v)", len(conns), last.Round(time.Millisecond), localapi.BodyTimeout)

	// The event stream outlived them all, and still works.
	if _, err := c.SetName(ctx(t), "after the slow ones"); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, s, "me.name.changed", 10*time.Second)
	if age := time.Since(opened); age < localapi.BodyTimeout {
		t.Fatalf("event stream is only %v old", age)
	}
}

// TestLongCallOutlivesBodyTimeout: once a request's body is in, the read
// deadline no longer applies, so a call longer than the body timeout (here
// a ping of three round trips 600 ms apart, against a body timeout of
// 300 ms) runs to its end; a deadline firing in the server's background
// read would cancel the request's context and cut the ping short.
func TestLongCallOutlivesBodyTimeout(t *testing.T) {
	const bodyTimeout = 300 * time.Millisecond
	_, a, _ := serveWith(t, "Alice", func(n *node.Node, l net.Listener) *localapi.Server {
		return localapi.ServeWithTimeouts(n, l, time.Second, bodyTimeout, time.Minute)
	})
	_, b, _ := serve(t, "Bob")
	info, err := b.ID(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var target string
	for _, addr := range info.Addrs {
		if s := addr.String(); strings.HasPrefix(s, "/ip4/127.0.0.1/tcp/") {
			target = fmt.Sprintf("%s/p2p/%s", s, info.PeerID)
			break
		}
	}
	if target == "" {
		t.Fatalf("Bob has no loopback TCP address: %v", info.Addrs)
	}
	res, err := a.Ping(ctx(t), apitype.PingRequest{Target: target, Count: 3, Interval: "600ms"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 3 {
		t.Fatalf("%d round trips, want 3: the call was cut short", len(res.Results))
	}
}

// TestManyConcurrentRequests: 1,000 requests at once all get answers.
func TestManyConcurrentRequests(t *testing.T) {
	_, c, _ := serve(t, "Alice")
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for range 1000 {
		wg.Go(func() {
			if _, err := c.ID(ctx(t)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent request: %v", err)
	}
}

// letters is an endless body.
type letters struct{}

func (letters) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	return len(p), nil
}

// TestHugeBody: a 100 MB body, with a length or chunked, is refused with a
// 400 once maxBody is read, and the server stays up.
func TestHugeBody(t *testing.T) {
	_, c, home := serve(t, "Alice")
	hc := rawClient(t, home)
	for _, chunked := range []bool{false, true} {
		req, err := http.NewRequestWithContext(ctx(t), "POST", "http://x/v1/contacts", io.LimitReader(letters{}, 100<<20))
		if err != nil {
			t.Fatal(err)
		}
		if !chunked {
			req.ContentLength = 100 << 20
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("chunked=%v: %v", chunked, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), fmt.Sprintf("larger than %d bytes", localapi.MaxBody)) {
			t.Errorf("chunked=%v: %d %.200s", chunked, resp.StatusCode, body)
		}
	}
	if _, err := c.ID(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
