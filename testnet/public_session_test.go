//go:build linux

package testnet_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
	"github.com/peercollab/peercollab/testnet"
	"github.com/peercollab/peercollab/testnet/testnettest"
)

// publicSymmetricYAML: the stand-in public network of public-meet.yaml,
// Alice and Bob behind symmetric NATs (no hole punching: every message
// crosses a relay found on the public DHT, whose circuits go-libp2p
// limits to 2 minutes and 128 KiB each way), with a session running
// between them. The test drives the session itself.
const publicSymmetricYAML = `
name: public mode, two symmetric NATs, a session through relays found on the public DHT
timeout: 15m

networks:
  - name: internet
    subnet: 11.0.0.0/8
  - name: home1
    subnet: 192.168.1.0/24
    router: {nat: symmetric}
  - name: home2
    subnet: 192.168.2.0/24
    router: {nat: symmetric}

nodes:
  - {name: amino1, network: internet, ip: 11.1.0.1, role: relay, flags: [LISTEN --amino, --public-bootstrap, BOOT(amino2), --public-bootstrap, BOOT(amino3), --public-bootstrap, BOOT(amino4)]}
  - {name: amino2, network: internet, ip: 11.2.0.1, role: relay, flags: [LISTEN --amino, --public-bootstrap, BOOT(amino1), --public-bootstrap, BOOT(amino3), --public-bootstrap, BOOT(amino4)]}
  - {name: amino3, network: internet, ip: 11.3.0.1, role: relay, flags: [LISTEN --amino, --public-bootstrap, BOOT(amino1), --public-bootstrap, BOOT(amino2), --public-bootstrap, BOOT(amino4)]}
  - {name: amino4, network: internet, ip: 11.4.0.1, role: relay, flags: [LISTEN --amino, --public-bootstrap, BOOT(amino1), --public-bootstrap, BOOT(amino2), --public-bootstrap, BOOT(amino3)]}
  - {name: alice, network: home1, display_name: Alice, env: {GOLOG_LOG_LEVEL: "info,peercollab/reach=debug,peercollab/sessions=debug"}, flags: [--public, --public-bootstrap, BOOT(amino1), --public-bootstrap, BOOT(amino3)]}
  - {name: bob, network: home2, display_name: Bob, env: {GOLOG_LOG_LEVEL: "info,peercollab/reach=debug,peercollab/sessions=debug"}, flags: [--public, --public-bootstrap, BOOT(amino2), --public-bootstrap, BOOT(amino4)]}

steps:
  - name: relays found on the public DHT, reservations held
    node: [alice, bob]
    sh: peercollab id --json | grep -q /p2p-circuit
    within: 30s
  - name: they exchange cards without addresses
    node: [alice, bob]
    sh: |
      peercollab card -o {{self.name}}.full.contact &&
      sed '/BEGIN LIBP2P PEER RECORD/,/END LIBP2P PEER RECORD/d' {{self.name}}.full.contact > {{self.name}}.contact
  - {node: alice, run: contacts add Bob.contact}
  - {node: bob, run: contacts add Alice.contact}
  - {node: bob, run: apps register org.example.chat --desc Chat --auto-accept}
  - name: alice finds bob by rendezvous and invites him; the connection stays relayed (symmetric NATs)
    node: alice
    sh: |
      peercollab invite Bob --app org.example.chat --wait &&
      peercollab ping Bob --count 1 --json | grep -q '"relayed":true' &&
      peercollab session create --app org.example.chat --json > session.json &&
      sed -n 's/^  "id": "\(.*\)",$/\1/p' session.json > sid && test -s sid &&
      peercollab session invite "$(cat sid)" Bob
    within: 60s
  - node: alice
    sh: peercollab session status "$(cat sid)" --json
    json: [{path: members.#, equals: 2}]
    within: 10s
  - {node: alice, sh: 'peercollab session start "$(cat sid)"'}
  - node: bob
    sh: peercollab session status "$(cat sid)" --json
    json: [{path: state, equals: running}, {path: joined, equals: true}]
    within: 10s
`

// publicSymmetricScenario is publicSymmetricYAML with the relays on
// transport (tcp or quic: they listen on it alone, so every circuit
// crosses it; empty: both, and the nodes choose).
func publicSymmetricScenario(transport string) (string, error) {
	listen, boot := "", `"{{%[1]s.addr}}"`
	switch transport {
	case "":
	case "tcp":
		listen = fmt.Sprintf(`--listen, "/ip4/{{self.ip}}/tcp/%d",`, testnet.Port)
	case "quic":
		listen = fmt.Sprintf(`--listen, "/ip4/{{self.ip}}/udp/%d/quic-v1",`, testnet.Port)
		boot = fmt.Sprintf(`"/ip4/{{%%[1]s.ip}}/udp/%d/quic-v1/p2p/{{%%[1]s.id}}"`, testnet.Port)
	default:
		return "", fmt.Errorf("PEERCOLLAB_PUBLIC_SESSION_TRANSPORT is tcp or quic, not %q", transport)
	}
	y := strings.ReplaceAll(publicSymmetricYAML, "LISTEN ", listen+" ")
	for _, n := range []string{"amino1", "amino2", "amino3", "amino4"} {
		y = strings.ReplaceAll(y, "BOOT("+n+")", fmt.Sprintf(boot, n))
	}
	return y, nil
}

// TestPublicSymmetricSession runs a session between two contacts behind
// symmetric NATs in public mode for PEERCOLLAB_PUBLIC_SESSION (a
// duration, such as 4m; the test is skipped without it): Alice sends a
// 1 KiB message every second, and the test reports what reached Bob: how
// many, duplicates, the longest gap between two deliveries and the
// longest delay of one. The goal is no gap over 1 s; the figures are
// reported, not asserted (only a lost message fails the test). With
// PEERCOLLAB_PUBLIC_SESSION_KILL set, the relay that carries the session
// is killed (SIGKILL) half way. PEERCOLLAB_PUBLIC_SESSION_TRANSPORT (tcp
// or quic) puts the relays on that transport alone.
func TestPublicSymmetricSession(t *testing.T) {
	dur, err := time.ParseDuration(os.Getenv("PEERCOLLAB_PUBLIC_SESSION"))
	if err != nil || dur <= 0 {
		t.Skip("set PEERCOLLAB_PUBLIC_SESSION to a duration (4m: one 1 KiB message a second for 4 minutes) to run it")
	}
	testnettest.RequireMachine(t)
	yaml, err := publicSymmetricScenario(os.Getenv("PEERCOLLAB_PUBLIC_SESSION_TRANSPORT"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := testnet.Parse(t.Name(), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var res soakResult
	drive := func(ctx context.Context, nodes []testnet.Live) error {
		var alice, bob testnet.Live
		for _, n := range nodes {
			switch n.Name {
			case "alice":
				alice = n
			case "bob":
				bob = n
			}
		}
		var kill func(context.Context) (string, error)
		if os.Getenv("PEERCOLLAB_PUBLIC_SESSION_KILL") != "" {
			kill = func(ctx context.Context) (string, error) { return killRelayInUse(ctx, alice.Client, bob.PeerID, nodes) }
		}
		var err error
		res, err = soak(ctx, alice.Client, bob.Client, alice.PeerID, dur, kill)
		return err
	}
	// PEERCOLLAB_PUBLIC_SESSION_LOGS keeps the nodes' logs there.
	rep, err := testnet.Run(context.Background(), sc, testnet.Options{Binary: testnettest.Binary(t), Drive: drive,
		LogDir: os.Getenv("PEERCOLLAB_PUBLIC_SESSION_LOGS")})
	if err != nil {
		var b strings.Builder
		if rep != nil {
			rep.Print(&b)
		}
		t.Fatalf("%v\n%s", err, b.String())
	}
	t.Logf("%s", res)
	if res.delivered < res.sent {
		t.Errorf("%d of %d messages reached bob", res.delivered, res.sent)
	}
}

type soakResult struct {
	sent, delivered, duplicates int
	longestGap, longestDelay    time.Duration
	gapAt                       time.Duration // since the first message
	gapsOver1s                  int
	gaps                        []string // each gap over 1 s: when (since the first message) and how long
	sendErrors                  int
	killed                      string // what was killed, and when
}

func (r soakResult) String() string {
	return fmt.Sprintf("sent %d, delivered %d (%d duplicates, %d send errors); longest gap between deliveries %v (at %v), %d gaps over 1 s %v; longest delay of one message %v",
		r.sent, r.delivered, r.duplicates, r.sendErrors, r.longestGap.Round(time.Millisecond), r.gapAt.Round(time.Second), r.gapsOver1s, r.gaps, r.longestDelay.Round(time.Millisecond)) + r.killed
}

// soak sends a 1 KiB message a second from alice's session for dur and
// records when each reached bob.
func soak(ctx context.Context, alice, bob *client.Client, aliceID string, dur time.Duration, kill func(context.Context) (string, error)) (soakResult, error) {
	var r soakResult
	sessions, err := alice.Sessions(ctx)
	if err != nil || len(sessions) != 1 {
		return r, fmt.Errorf("alice's sessions: %v, %v", sessions, err)
	}
	id := sessions[0].ID
	stream, err := bob.Events(ctx, client.Types(apitype.EventMessage))
	if err != nil {
		return r, err
	}
	defer stream.Close()
	type arrival struct {
		n    uint32
		at   time.Time
		sent time.Time
	}
	arrivals := make(chan arrival, 1024)
	other := 0
	go func() {
		defer close(arrivals)
		for {
			ev, err := stream.Next(context.Background())
			if err != nil {
				return
			}
			var m apitype.Message
			if err := json.Unmarshal(ev.Data, &m); err != nil || m.Session != id || m.Sender.String() != aliceID || len(m.Data) < 12 {
				if other++; other <= 3 {
					fmt.Fprintf(os.Stderr, "soak: event %s left out (want session %s from %s): %v %s\n", ev.Type, id, aliceID, err, short(ev.Data))
				}
				continue
			}
			arrivals <- arrival{n: binary.BigEndian.Uint32(m.Data), at: time.Now(), sent: time.Unix(0, int64(binary.BigEndian.Uint64(m.Data[4:])))}
		}
	}()
	start := time.Now()
	total := int(dur / time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := range total {
		if kill != nil && i == total/2 {
			what, err := kill(ctx)
			if err != nil {
				return r, err
			}
			r.killed = fmt.Sprintf("; killed %s at %s", what, time.Now().Format("15:04:05.000"))
		}
		msg := make([]byte, 1024)
		binary.BigEndian.PutUint32(msg, uint32(i))
		binary.BigEndian.PutUint64(msg[4:], uint64(time.Now().UnixNano()))
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := alice.SessionSend(sctx, id, msg); err != nil {
			r.sendErrors++
		}
		cancel()
		r.sent++
		if i < total-1 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return r, ctx.Err()
			}
		}
	}
	// Wait for the stragglers, at most 30 s.
	seen := map[uint32]bool{}
	var times []time.Time
	deadline := time.After(30 * time.Second)
	pending := true
	collect := func(a arrival) {
		if seen[a.n] {
			r.duplicates++
			return
		}
		seen[a.n] = true
		times = append(times, a.at)
		r.longestDelay = max(r.longestDelay, a.at.Sub(a.sent))
	}
	for pending && len(seen) < r.sent {
		select {
		case a, ok := <-arrivals:
			if !ok {
				pending = false
				break
			}
			collect(a)
		case <-deadline:
			pending = false
		}
	}
	for {
		select {
		case a, ok := <-arrivals:
			if ok {
				collect(a)
				continue
			}
		default:
		}
		break
	}
	r.delivered = len(seen)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(times); i++ {
		g := times[i].Sub(times[i-1])
		if g > time.Second+100*time.Millisecond {
			r.gapsOver1s++
			r.gaps = append(r.gaps, fmt.Sprintf("%v at %s", g.Round(time.Millisecond), times[i].Format("15:04:05.000")))
		}
		if g > r.longestGap {
			r.longestGap, r.gapAt = g, times[i].Sub(start)
		}
	}
	return r, nil
}

func short(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// killRelayInUse kills (SIGKILL) the relay through which alice reaches bob.
func killRelayInUse(ctx context.Context, alice *client.Client, bob string, nodes []testnet.Live) (string, error) {
	res, err := alice.Ping(ctx, apitype.PingRequest{Target: bob, Count: 1})
	if err != nil || len(res.Results) == 0 || res.Results[0].Conn.Addr == nil {
		return "", fmt.Errorf("which relay carries the session: %v %v", res, err)
	}
	addr := res.Results[0].Conn.Addr
	relay, err := addr.ValueForProtocol(ma.P_P2P)
	if err != nil {
		return "", fmt.Errorf("the session's connection %s is not relayed", addr)
	}
	for _, n := range nodes {
		if n.PeerID == relay {
			pid := n.PID()
			if pid == 0 {
				return "", fmt.Errorf("%s is not running", n.Name)
			}
			return n.Name + " (" + addr.String() + ")", syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return "", fmt.Errorf("no node is relay %s", relay)
}
