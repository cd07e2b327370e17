package testnet_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peercollab/peercollab/testnet"
	"github.com/peercollab/peercollab/testnet/testnettest"
)

// fakeNeighboursYAML is a subnet where mallory plays fakeKeys fake
// neighbours from fakeAddrs addresses of her own (fakenear), each announcing
// itself every second and holding a connection to the victim, reconnecting
// when it ends. The victim must still list an honest newcomer at once, and
// its contact must still reach it and invite it. Go-libp2p exempts
// loopback from its per-address limits, so this runs on a bridge.
const fakeNeighboursYAML = `
name: fake neighbours
description: >
  %[2]d fake neighbours from %[3]d addresses announce themselves and hold
  connections to the victim; an honest newcomer is listed at once, and the
  victim's contact still connects and invites.
timeout: 5m

networks:
  - name: lan
    subnet: 10.1.0.0/24

nodes:
  - {name: victim, network: lan, display_name: Victim}
  - {name: friend, network: lan, display_name: Friend}
  - {name: newcomer, network: lan, display_name: Newcomer, autostart: false}
  - {name: mallory, network: lan, display_name: Mallory}

steps:
  - name: the victim and its friend are contacts
    node: [victim, friend]
    run: card -o {{self.name}}.contact
  - {node: victim, run: contacts add Friend.contact}
  - {node: friend, run: contacts add Victim.contact}
  - {node: victim, run: apps register org.example.chat --desc Chat}

  - name: mallory takes %[3]d more addresses and starts %[2]d fake neighbours
    node: mallory
    sh: |
      for i in $(seq 100 %[4]d); do ip addr add 10.1.0.$i/24 dev eth0 || exit 1; done
      %[1]s -addrs 10.1.0.100-%[4]d -keys %[2]d -victim {{victim.addr}} >fakenear.log 2>&1 </dev/null &

  - name: every fake has announced itself and tried to connect
    node: mallory
    sh: grep -q ready fakenear.log
    within: 60s

  - name: the victim lists fakes, at most 4 from each of their addresses
    node: victim
    run: near --json
    json:
      - {path: "#", at_least: 100}
      - {path: "#", at_most: %[5]d}
    within: 20s

  - name: the fakes hold no more than the strangers' budget (64) of the victim's connections
    node: victim
    run: id --json
    json:
      - {path: connections, at_most: 70}

  - name: an honest newcomer is listed by the victim at once
    parallel:
      - start: newcomer
      - node: victim
        event: near.changed
        json:
          - {path: change, equals: added}
          - {path: person.peer_id, equals: "{{newcomer.id}}"}
          - {path: person.display_name, equals: Newcomer}
        within: 10s

  - name: the friend still reaches the victim and invites it
    parallel:
      - node: friend
        run: invite Victim --app org.example.chat --message "still there?"
      - node: victim
        event: invitation.changed
        json:
          - {path: direction, equals: received}
          - {path: peer, equals: "{{friend.id}}"}
          - {path: trusted, equals: true}
        within: 10s

  - name: and pings it
    node: friend
    run: ping Victim --count 3 --json
    json:
      - {path: "..#", equals: 3}
`

// TestFakeNeighbours: 300 fake neighbours from 50 addresses on one subnet.
func TestFakeNeighbours(t *testing.T) {
	testnettest.RequireMachine(t)
	if testing.Short() {
		t.Skip("300 fake neighbours: not in -short")
	}
	const keys, addrs = 300, 50
	bin := filepath.Join(t.TempDir(), "fakenear")
	if out, err := exec.Command("go", "build", "-o", bin, "./internal/fakenear").CombinedOutput(); err != nil {
		t.Fatalf("build fakenear: %v\n%s", err, out)
	}
	sc, err := testnet.Parse(t.Name(), fmt.Appendf(nil, fakeNeighboursYAML, bin, keys, addrs, 100+addrs-1, 4*addrs+3))
	if err != nil {
		t.Fatal(err)
	}
	// What the victim holds once it all happened.
	drive := func(ctx context.Context, nodes []testnet.Live) error {
		victim := nodes[0]
		people, err := victim.Client.Near(ctx)
		if err != nil {
			return err
		}
		info, err := victim.Client.ID(ctx)
		if err != nil {
			return err
		}
		t.Logf("the victim lists %d people near and holds %d connections to %d peers", len(people), info.Connections, info.Peers)
		return nil
	}
	rep, err := testnet.Run(context.Background(), sc, testnet.Options{Binary: testnettest.Binary(t), Drive: drive})
	if err != nil {
		var b strings.Builder
		if rep != nil {
			rep.Print(&b)
		}
		t.Fatalf("%v\n%s", err, b.String())
	}
	for _, s := range rep.Steps {
		if strings.HasPrefix(s.Name, "an honest newcomer") {
			t.Logf("newcomer listed by the victim %.0f ms after its start was asked for", s.DurationMS)
		}
	}
}
