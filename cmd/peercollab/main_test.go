package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
)

// The test binary doubles as the peercollab binary (and as a raw libp2p
// baseline for the benchmark) when these variables are set, so tests run
// real processes without a separate build.
const (
	envBeCLI     = "PEERCOLLAB_TEST_BE_CLI"
	envBeRawHost = "PEERCOLLAB_TEST_BE_RAWHOST"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envBeCLI) != "":
		main()
		os.Exit(0)
	case os.Getenv(envBeRawHost) != "":
		rawHost(os.Getenv(envBeRawHost))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// command returns an exec.Cmd running peercollab with args.
func command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), envBeCLI+"=1", "GOLOG_LOG_LEVEL=error")
	return cmd
}

// pc runs a peercollab command to completion and returns its standard
// output, or an error holding its standard error.
func pc(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// must runs a command that has to succeed.
func must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := pc(t, args...)
	if err != nil {
		t.Fatalf("peercollab %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// startDaemon runs a daemon on home until the test ends, waiting until its
// API answers. The cleanup stops it with SIGTERM and checks a clean exit.
func startDaemon(t testing.TB, home string, args ...string) {
	t.Helper()
	startStoppableDaemon(t, home, args...)
}

// startStoppableDaemon is startDaemon, and returns a function that stops
// the daemon before the test ends (the cleanup then does nothing).
func startStoppableDaemon(t testing.TB, home string, args ...string) (stop func()) {
	t.Helper()
	// --scope internet: no mDNS, whose multicast would leave this machine.
	cmd := command(context.Background(), append([]string{"--home", home, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--scope", "internet"}, args...)...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("daemon %s did not exit cleanly: %v\n%s", home, err, logs.String())
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Errorf("daemon %s ignored SIGTERM for 10s", home)
			}
		})
	}
	t.Cleanup(stop)
	waitAPI(t, home, done)
	return stop
}

// waitAPI polls the API of home until it answers, the daemon exits, or 20s pass.
func waitAPI(t testing.TB, home string, exited <-chan error) {
	t.Helper()
	c := client.New(home)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.ID(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("daemon %s exited: %v", home, err)
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon %s API not up after 20s: %v", home, err)
		}
	}
}

func TestWalkthrough(t *testing.T) {
	dir := t.TempDir()
	alice, bob, carol := filepath.Join(dir, "alice"), filepath.Join(dir, "bob"), filepath.Join(dir, "carol")
	must(t, "--home", alice, "init", "--name", "Alice", "--email", "alice@example.org")
	if out := must(t, "--home", alice, "init", "--name", "Mallory"); !strings.Contains(out, "nothing changed") {
		t.Errorf("second init: %s", out)
	}
	st, err := os.Stat(filepath.Join(alice, "identity.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity.key: %v, mode %v", err, st.Mode())
	}
	startDaemon(t, alice)
	startDaemon(t, bob, "--name", "Bob")
	startDaemon(t, carol, "--name", "Carol")
	if st, err := os.Stat(apitype.SocketPath(alice)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("API socket: %v, mode %v", err, st.Mode())
	}

	var aliceID, bobID struct {
		PeerID      string `json:"peer_id"`
		DisplayName string `json:"display_name"`
	}
	json.Unmarshal([]byte(must(t, "--home", alice, "id", "--json")), &aliceID)
	json.Unmarshal([]byte(must(t, "--home", bob, "id", "--json")), &bobID)
	if aliceID.DisplayName != "Alice" || bobID.DisplayName != "Bob" {
		t.Fatalf("ids: %+v %+v", aliceID, bobID)
	}

	aliceCard := filepath.Join(dir, "alice.contact")
	must(t, "--home", alice, "card", "-o", aliceCard)
	if _, err := exec.LookPath("openssl"); err == nil {
		out, err := exec.Command("openssl", "x509", "-in", aliceCard, "-noout", "-text").CombinedOutput()
		if err != nil {
			t.Fatalf("openssl cannot read the card: %v\n%s", err, out)
		}
		for _, want := range []string{"CN = Alice", "URI:p2p:" + aliceID.PeerID, "email:alice@example.org", "CA:TRUE"} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("openssl output lacks %q:\n%s", want, out)
			}
		}
	} else {
		t.Log("openssl not installed; skipping its check")
	}

	must(t, "--home", bob, "contacts", "add", aliceCard)
	var list []struct {
		PeerID string `json:"peer_id"`
	}
	if err := json.Unmarshal([]byte(must(t, "--home", bob, "contacts", "list", "--json")), &list); err != nil || len(list) != 1 || list[0].PeerID != aliceID.PeerID {
		t.Fatalf("Bob's contacts: %+v, %v", list, err)
	}

	bobCard, endorsed := filepath.Join(dir, "bob.contact"), filepath.Join(dir, "bob-endorsed.contact")
	must(t, "--home", bob, "card", "-o", bobCard)
	must(t, "--home", alice, "contacts", "endorse", bobCard, "-o", endorsed)

	type verdict struct {
		Trust apitype.TrustView `json:"trust"`
	}
	var v verdict
	json.Unmarshal([]byte(must(t, "--home", carol, "contacts", "verify", "--json", endorsed)), &v)
	if v.Trust.Trusted {
		t.Fatalf("Carol trusts Bob's endorsed card without knowing Alice: %+v", v)
	}
	if _, err := pc(t, "--home", carol, "contacts", "verify", "--require-trusted", endorsed); err == nil || !strings.Contains(err.Error(), "not endorsed by any of your contacts") {
		t.Fatalf("--require-trusted without Alice: %v", err)
	}
	must(t, "--home", carol, "contacts", "add", aliceCard)
	json.Unmarshal([]byte(must(t, "--home", carol, "contacts", "verify", "--json", endorsed)), &v)
	if !v.Trust.Trusted || v.Trust.Via.String() != aliceID.PeerID || v.Trust.Depth != 1 {
		t.Fatalf("Carol, who trusts Alice, does not trust Bob's endorsed card: %+v", v)
	}
	// The plain card of Bob, not endorsed, stays untrusted for Carol.
	json.Unmarshal([]byte(must(t, "--home", carol, "contacts", "verify", "--json", bobCard)), &v)
	if v.Trust.Trusted {
		t.Fatalf("Carol trusts Bob's plain card: %+v", v)
	}
	out := must(t, "--home", carol, "contacts", "add", endorsed)
	if !strings.Contains(out, "endorsed by your contact Alice") {
		t.Errorf("add output does not say who vouches: %s", out)
	}
	if out := must(t, "--home", carol, "contacts", "show", "bo"); !strings.Contains(out, bobID.PeerID) {
		t.Errorf("show by prefix: %s", out)
	}
	must(t, "--home", carol, "contacts", "update", "bob", "--nickname", "bobby", "--block", "--watch")
	var detail apitype.ContactDetail
	json.Unmarshal([]byte(must(t, "--home", carol, "contacts", "show", "bobby", "--json")), &detail)
	if c := detail.Contact; c.Nickname != "bobby" || !c.Watch || c.WatcherPermission != apitype.WatcherBlocked {
		t.Fatalf("after update: %+v", c)
	}
	exported := must(t, "--home", carol, "contacts", "export", "bobby")
	if !strings.Contains(exported, "BEGIN CERTIFICATE") {
		t.Fatalf("export: %s", exported)
	}
	must(t, "--home", carol, "contacts", "remove", "bobby")
	if _, err := pc(t, "--home", carol, "contacts", "show", "bobby"); err == nil || !strings.Contains(err.Error(), "No such contact") {
		t.Fatalf("show after remove: %v", err)
	}
}

func TestErrorsAreOneSentence(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "h")
	_, err := pc(t, "--home", home, "id")
	if err == nil || !strings.Contains(err.Error(), "No peercollab daemon is running") || !strings.Contains(err.Error(), "peercollab --home "+home+" daemon") {
		t.Fatalf("without a daemon: %v", err)
	}
	startDaemon(t, home, "--name", "H")
	cmd := command(context.Background(), "--home", home, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--scope", "internet")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "already running") {
		t.Fatalf("second daemon: %v %s", err, out)
	}
	bad := filepath.Join(dir, "bad.contact")
	os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nMIIB"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"contacts", "add", bad}, "Card is truncated"},
		{[]string{"contacts", "add", filepath.Join(dir, "missing")}, "no such file or directory"},
		{[]string{"contacts", "show", "nobody"}, "No such contact"},
		{[]string{"contacts", "update", "nobody"}, "Nothing to change"},
	} {
		_, err := pc(t, append([]string{"--home", home}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
			continue
		}
		if lines := strings.Count(err.Error(), "\n"); lines != 0 || !strings.HasSuffix(err.Error(), ".") {
			t.Errorf("%v: error is not one sentence: %q", tc.args, err)
		}
	}
}

func TestEventStream(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	startDaemon(t, a, "--name", "A")
	startDaemon(t, b, "--name", "B")
	card := filepath.Join(dir, "b.contact")
	must(t, "--home", b, "card", "-o", card)

	ctx, cancel := context.WithCancel(context.Background())
	ev := command(ctx, "--home", a, "events", "--json")
	stdout, _ := ev.StdoutPipe()
	stderr, _ := ev.StderrPipe()
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); ev.Wait() }()
	// The stream is subscribed once the command says so on stderr.
	open := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Following the node's events") {
				close(open)
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	lines := make(chan string)
	go func() {
		dec := json.NewDecoder(stdout)
		for {
			var raw json.RawMessage
			if dec.Decode(&raw) != nil {
				close(lines)
				return
			}
			lines <- string(raw)
		}
	}()
	deadline := time.After(20 * time.Second)
	select {
	case <-open:
	case <-deadline:
		t.Fatal("events did not say within 20s that its stream is open")
	}
	must(t, "--home", a, "contacts", "add", card)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("event stream ended")
			}
			if strings.Contains(l, `"type":"contact.changed"`) && strings.Contains(l, `"change":"added"`) {
				return
			}
		case <-deadline:
			t.Fatal("no contact.changed event within 20s")
		}
	}
}

// rawHost is the baseline of BenchmarkDaemonStart: a bare go-libp2p host
// with the daemon's transports that serves its peer ID over HTTP on a unix
// socket, and nothing else.
func rawHost(socket string) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.NoTransports, libp2p.Transport(tcp.NewTCPTransport), libp2p.Transport(quic.NewTransport), libp2p.DisableMetrics())
	if err != nil {
		os.Exit(1)
	}
	l, err := net.Listen("unix", socket)
	if err != nil {
		os.Exit(1)
	}
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"peer_id": h.ID().String()})
	}))
}

// pollEvery checks cond every d until it holds (for timing a start-up:
// the resolution of the measurement is d).
func pollEvery(d time.Duration, cond func() bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for !cond() {
		<-t.C
	}
}

// BenchmarkDaemonStart measures a daemon process from exec until its API
// answers `id`, on a home that holds an identity, against a raw go-libp2p
// host process that serves its ID the same way.
func BenchmarkDaemonStart(b *testing.B) {
	home := filepath.Join(b.TempDir(), "h")
	must(b, "--home", home, "init", "--name", "Bench")
	var raw, ours time.Duration
	b.Run("raw-libp2p", func(b *testing.B) {
		socket := filepath.Join(b.TempDir(), "raw.sock")
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
		for b.Loop() {
			os.Remove(socket)
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), envBeRawHost+"="+socket)
			start := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			pollEvery(500*time.Microsecond, func() bool {
				resp, err := hc.Get("http://raw/id")
				if err == nil {
					resp.Body.Close()
				}
				return err == nil
			})
			raw += time.Since(start)
			cmd.Process.Kill()
			cmd.Wait()
			hc.CloseIdleConnections()
		}
		raw /= time.Duration(b.N)
		b.ReportMetric(float64(raw.Microseconds())/1000, "ms/start")
	})
	b.Run("peercollab", func(b *testing.B) {
		c := client.New(home)
		for b.Loop() {
			cmd := command(context.Background(), "--home", home, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--scope", "internet")
			start := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			pollEvery(500*time.Microsecond, func() bool {
				_, err := c.ID(context.Background())
				return err == nil
			})
			ours += time.Since(start)
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		ours /= time.Duration(b.N)
		b.ReportMetric(float64(ours.Microseconds())/1000, "ms/start")
		if raw > 0 {
			b.ReportMetric(float64(ours)/float64(raw), "x-raw")
		}
	})
}

// startRelay runs a relay until the test ends and returns its address.
func startRelay(t *testing.T, home string) string {
	t.Helper()
	cmd := command(context.Background(), "--home", home, "relay", "--listen", "/ip4/127.0.0.1/tcp/0", "--scope", "internet")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := <-done; err != nil {
			t.Errorf("relay exited: %v\n%s", err, logs.String())
		}
	})
	waitAPI(t, home, done)
	info, err := client.New(home).ID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.Addrs[0].String() + "/p2p/" + info.PeerID.String()
}

func TestPingDirectAndThroughRelay(t *testing.T) {
	dir := t.TempDir()
	relay := startRelay(t, filepath.Join(dir, "r"))
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	startDaemon(t, a, "--name", "A", "--relay", relay)
	startDaemon(t, b, "--name", "B")
	var aID struct {
		PeerID string   `json:"peer_id"`
		Addrs  []string `json:"addrs"`
	}
	json.Unmarshal([]byte(must(t, "--home", a, "id", "--json")), &aID)
	circuit := relay + "/p2p-circuit"
	found := false
	for _, ad := range aID.Addrs {
		found = found || ad == circuit
	}
	if !found {
		t.Fatalf("A's addresses %v lack its relay address %s", aID.Addrs, circuit)
	}
	// The reservation is made in the background; retry until it holds.
	var out string
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err = pc(t, "--home", b, "ping", "--json", "-c", "2", circuit+"/p2p/"+aID.PeerID)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("ping through the relay: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Relayed bool    `json:"relayed"`
			RTT     float64 `json:"rtt_ms"`
		}
		if json.Unmarshal([]byte(line), &r) != nil || !r.Relayed || r.RTT <= 0 {
			t.Fatalf("relayed ping result: %s", line)
		}
	}
	if _, err := pc(t, "--home", b, "ping", "nobody"); err == nil || !strings.Contains(err.Error(), "Not a peer ID") {
		t.Fatalf("ping nobody: %v", err)
	}
}
