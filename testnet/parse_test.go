package testnet

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	manet "github.com/multiformats/go-multiaddr/net"
)

const goodScenario = `
name: good
timeout: 1m
networks:
  - name: lan
    subnet: 10.1.0.0/24
  - name: home
    subnet: 10.2.0.0/24
    router: {nat: cone}
nodes:
  - {name: relay, network: internet, role: relay}
  - name: alice
    network: lan
    display_name: Alice Liddell
    flags: [--relay, "{{relay.addr}}"]
    env: {GOLOG_LOG_LEVEL: debug}
  - {name: bob, network: home, autostart: false}
steps:
  - node: alice
    run: contacts add "{{run.dir}}/bob card.contact" --nickname 'B b'
  - node: [alice, bob]
    run: [id, --json]
    json:
      - {path: peer_id, equals: "{{self.id}}"}
      - {path: addrs, count: 2}
      - {path: "#", exists: false}
      - {path: addrs, contains: "/ip4/{{self.ip}}/tcp/4737"}
    within: 5s
  - node: bob
    sh: test -f {{run.dir}}/x && echo {{home.public}}
    status: 1
    stdout: "11.0.0.1"
  - node: bob
    event: contact.changed
    json: [{path: contact.peer_id, equals: "{{alice.id}}"}]
    count: 2
    since: start
  - parallel:
      - start: bob
      - stop: [alice, bob]
      - kill: alice
      - restart: alice
  - cut: home
  - heal: alice
  - netem: {link: alice, delay: 50ms, jitter: 5ms, loss: 2.5%}
  - netem: {link: alice}
  - node: alice
    run: ping x
    status: nonzero
`

func TestParseGood(t *testing.T) {
	sc, err := Parse("good.yaml", []byte(goodScenario))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "good" || sc.Timeout != time.Minute || len(sc.Nodes) != 3 || len(sc.Steps) != 10 {
		t.Fatalf("parsed %+v", sc)
	}
	if got := sc.Networks[len(sc.Networks)-1]; got.Name != Internet || got.Subnet.String() != DefaultInternet {
		t.Errorf("internet segment = %+v, want the default one added", got)
	}
	alice := sc.Nodes[1]
	if alice.DisplayName != "Alice Liddell" || alice.Role != RolePeer || !alice.Autostart || alice.Env[0] != "GOLOG_LOG_LEVEL=debug" {
		t.Errorf("alice = %+v", alice)
	}
	if sc.Nodes[2].Autostart || sc.Nodes[2].DisplayName != "bob" {
		t.Errorf("bob = %+v", sc.Nodes[2])
	}
	s := sc.Steps
	if want := []string{"contacts", "add", "{{run.dir}}/bob card.contact", "--nickname", "B b"}; strings.Join(s[0].Args, "|") != strings.Join(want, "|") {
		t.Errorf("args = %q, want %q", s[0].Args, want)
	}
	if s[1].Kind != StepRun || len(s[1].Nodes) != 2 || s[1].Within != 5*time.Second || len(s[1].JSON) != 4 || s[1].JSON[1].Value != 2.0 || s[1].JSON[2].Value != false {
		t.Errorf("step 2 = %+v", s[1])
	}
	if s[2].Status != 1 || s[2].Stdout != "11.0.0.1" || s[2].Line != 29 {
		t.Errorf("step 3 = %+v", s[2])
	}
	if s[3].Count != 2 || !s[3].SinceStart || s[3].Event != "contact.changed" {
		t.Errorf("step 4 = %+v", s[3])
	}
	if len(s[4].Steps) != 4 || s[4].Steps[1].Kind != StepStop || len(s[4].Steps[1].Nodes) != 2 {
		t.Errorf("step 5 = %+v", s[4])
	}
	if s[7].Netem != (Netem{Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 2.5}) || s[8].Netem != (Netem{}) {
		t.Errorf("netem steps = %+v, %+v", s[7].Netem, s[8].Netem)
	}
	if s[9].Status != AnyNonzero {
		t.Errorf("status nonzero = %v", s[9].Status)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "networks:\n  - {name: lan, subnet: 10.1.0.0/24}\nnodes:\n  - {name: alice, network: lan}\n"
	tests := []struct {
		name, yaml string
		line       int
		want       string
	}{
		{"syntax", "networks: [\n", 1, "YAML"},
		{"not a mapping", "- a\n", 1, "must be a mapping"},
		{"unknown top key", "name: x\nnetwork: []\n", 2, `unknown key "network"`},
		{"no networks", "nodes: []\n", 1, "declares no networks"},
		{"bad subnet", "networks:\n  - name: lan\n    subnet: 10.1.0.0/33\n", 3, "IPv4 prefix"},
		{"host bits", "networks:\n  - {name: lan, subnet: 10.1.0.1/24}\n", 2, "write 10.1.0.0/24"},
		{"bad nat", "networks:\n  - name: lan\n    subnet: 10.1.0.0/24\n    router: {nat: full}\n", 4, "nat must be"},
		{"router without nat", "networks:\n  - name: lan\n    subnet: 10.1.0.0/24\n    router: {}\n", 4, "needs nat"},
		{"unknown network key", "networks:\n  - name: lan\n    subnet: 10.1.0.0/24\n    gateway: 10.1.0.1\n", 4, `unknown key "gateway" in a network`},
		{"overlap", "networks:\n  - {name: a, subnet: 10.1.0.0/24, router: {nat: none}}\n  - {name: b, subnet: 10.1.0.0/16, router: {nat: cone}}\nnodes: []\n", 3, "overlaps"},
		{"overlap internet", "networks:\n  - {name: a, subnet: 11.0.0.0/16, router: {nat: cone}}\nnodes: []\n", 2, "overlaps the internet"},
		{"unknown node network", head + "  - {name: bob, network: wan}\n", 5, `no network is named "wan"`},
		{"duplicate node", head + "  - {name: alice, network: lan}\n", 5, "taken by the node on line 4"},
		{"node named like network", head + "  - {name: lan, network: lan}\n", 5, "taken by the network"},
		{"bad node name", head + "  - {name: Bob, network: lan}\n", 5, "lowercase"},
		{"reserved name", head + "  - {name: run, network: lan}\n", 5, "reserved"},
		{"bad role", head + "  - {name: bob, network: lan, role: boss}\n", 5, "role must be"},
		{"unknown node key", head + "  - {name: bob, network: lan, flag: [-x]}\n", 5, `unknown key "flag"`},
		{"bad env", head + "  - {name: bob, network: lan, env: [A=1]}\n", 5, "env must be a mapping"},
		{"bad flag template", head + "  - {name: bob, network: lan, flags: [\"{{carol.id}}\"]}\n", 5, "{{carol.id}} names no node"},
		{"step without kind", head + "steps:\n  - node: alice\n", 6, "a step needs one of"},
		{"two kinds", head + "steps:\n  - {node: alice, run: id, sh: ls}\n", 6, "both run and sh"},
		{"unknown step key", head + "steps:\n  - node: alice\n    run: id\n    withn: 5s\n", 8, `unknown key "withn" in a run step`},
		{"key not for kind", head + "steps:\n  - {start: alice, within: 5s}\n", 6, `unknown key "within" in a start step`},
		{"run without node", head + "steps:\n  - run: id\n", 6, "needs node"},
		{"unknown step node", head + "steps:\n  - {node: bob, run: id}\n", 6, `no node is named "bob"`},
		{"bad duration", head + "steps:\n  - {node: alice, run: id, within: soon}\n", 6, "positive duration"},
		{"bad status", head + "steps:\n  - {node: alice, run: id, status: 300}\n", 6, "exit status from 0 to 255"},
		{"unclosed quote", head + "steps:\n  - {node: alice, run: \"card -o 'x\"}\n", 6, "quote is not closed"},
		{"home flag", head + "steps:\n  - {node: alice, run: id --home /x}\n", 6, "sets --home itself"},
		{"empty command", head + "steps:\n  - {node: alice, run: peercollab}\n", 6, "needs a peercollab command"},
		{"unknown template node", head + "steps:\n  - {node: alice, run: \"ping {{bob.id}}\"}\n", 6, "{{bob.id}} names no node"},
		{"unknown template field", head + "steps:\n  - {node: alice, run: \"ping {{alice.peer}}\"}\n", 6, "alice has no peer"},
		{"network field without router", head + "steps:\n  - {node: alice, run: \"ping {{lan.public}}\"}\n", 6, "lan has no public"},
		{"self without node", head + "steps:\n  - {cut: alice, name: x}\n  - {start: alice, name: \"{{self.id}}\"}\n", 0, ""},
		{"broken template", head + "steps:\n  - {node: alice, run: ping {{alice.id}\n", 6, "YAML"},
		{"not a template", head + "steps:\n  - {node: alice, run: \"ping {{ alice }}\"}\n", 6, "is not a template"},
		{"json not a list", head + "steps:\n  - node: alice\n    run: id\n    json: {path: x, equals: 1}\n", 8, "json must be a list"},
		{"json two ops", head + "steps:\n  - node: alice\n    run: id\n    json:\n      - {path: x, equals: 1, exists: true}\n", 9, "has equals and exists"},
		{"json no op", head + "steps:\n  - node: alice\n    run: id\n    json:\n      - {path: x}\n", 9, "needs one of equals"},
		{"json no path", head + "steps:\n  - node: alice\n    run: id\n    json:\n      - {equals: 1}\n", 9, "needs path"},
		{"json bad count", head + "steps:\n  - node: alice\n    run: id\n    json:\n      - {path: x, count: many}\n", 9, "whole number"},
		{"event count", head + "steps:\n  - {node: alice, event: x, count: 0}\n", 6, "at least 1"},
		{"event since", head + "steps:\n  - {node: alice, event: x, since: boot}\n", 6, "since must be"},
		{"cut unknown", head + "steps:\n  - cut: lan\n", 6, "neither a node nor a network with a router"},
		{"netem without link", head + "steps:\n  - netem: {delay: 5ms}\n", 6, "needs link"},
		{"netem loss", head + "steps:\n  - netem: {link: alice, loss: 120%}\n", 6, "percentage"},
		{"netem jitter alone", head + "steps:\n  - netem: {link: alice, jitter: 5ms}\n", 6, "jitter needs a delay"},
		{"empty parallel", head + "steps:\n  - parallel: []\n", 6, "needs steps"},
		{"bad step in parallel", head + "steps:\n  - parallel:\n      - {node: alice, run: id}\n      - {node: alice, runs: id}\n", 8, `unknown key "runs"`},
		{"anchor", head + "steps:\n  - &a {node: alice, run: id}\n", 6, "anchors"},
		{"internet twice", "networks:\n  - {name: internet, subnet: 11.0.0.0/24}\n  - {name: internet, subnet: 12.0.0.0/24}\n", 3, "declared twice"},
		{"ip outside subnet", head + "  - {name: bob, network: lan, ip: 10.2.0.5}\n", 5, "not a host of network lan"},
		{"ip of router", head + "  - {name: bob, network: lan, ip: 10.1.0.1}\n", 5, "other than its first"},
		{"ip not an address", head + "  - {name: bob, network: lan, ip: ten}\n", 5, "IPv4 address"},
		{"ip twice", head + "  - {name: bob, network: lan, ip: 10.1.0.9}\n  - {name: carol, network: lan, ip: 10.1.0.9}\n", 6, "taken by node bob"},
		{"move without to", head + "steps:\n  - move: alice\n", 6, "needs to:"},
		{"move to nowhere", head + "steps:\n  - {move: alice, to: moon}\n", 6, `no network other than the internet is named "moon"`},
		{"move two", head + "  - {name: bob, network: lan}\nsteps:\n  - {move: [alice, bob], to: lan}\n", 7, "one node"},
		{"internet router", "networks:\n  - {name: internet, subnet: 11.0.0.0/24, router: {nat: cone}}\n", 2, "has no router"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.yaml))
			if tt.want == "" {
				// Cases that parse: the test only guards against a panic.
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, want a *ParseError", err)
			}
			if pe.Line != tt.line || !strings.Contains(pe.Msg, tt.want) || pe.File != "x.yaml" {
				t.Errorf("Parse = %q (line %d), want line %d and %q", err, pe.Line, tt.line, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "x.yaml:") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

func TestSplitWords(t *testing.T) {
	tests := map[string][]string{
		`a b  c`:              {"a", "b", "c"},
		`a "b c" d`:           {"a", "b c", "d"},
		`'a "b' c\ d`:         {`a "b`, "c d"},
		`x="y z"`:             {"x=y z"},
		`"a \"q\" \$ \n"`:     {`a "q" $ \n`},
		`ping {{bob.addr}}/x`: {"ping", "{{bob.addr}}/x"},
	}
	for in, want := range tests {
		got, err := splitWords(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`a "b`, `a 'b`, `a \`} {
		if _, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q) succeeded", bad)
		}
	}
}

func TestExpand(t *testing.T) {
	look := func(name, field string) (string, error) {
		if name == "a" && field == "id" {
			return "ID", nil
		}
		return "", errors.New("unknown")
	}
	got, err := expand("x{{a.id}}y{{ a.id }}", look)
	if err != nil || got != "xIDyID" {
		t.Errorf("expand = %q, %v", got, err)
	}
	for _, bad := range []string{"{{b.id}}", "{{a}}", "{{a.id", "{{ }}"} {
		if _, err := expand(bad, look); err == nil {
			t.Errorf("expand(%q) succeeded", bad)
		}
	}
}

// The internet segment must look public to go-multiaddr, or hole punching
// never starts.
func TestDefaultInternetIsPublic(t *testing.T) {
	sc, err := Parse("x", []byte("networks:\n  - {name: a, subnet: 10.1.0.0/24, router: {nat: cone}}\nnodes:\n  - {name: r, network: internet}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := makePlan(sc, "pctn000000")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{p.nets[0].public, p.nodes[0].ip} {
		m, err := manet.FromIP(a.AsSlice())
		if err != nil || !manet.IsPublicAddr(m) {
			t.Errorf("%s is not a public address for go-multiaddr", a)
		}
	}
	if p.nets[0].public.String() != "11.0.0.1" || p.nodes[0].ip.String() != "11.0.0.2" || p.nets[0].gateway.String() != "10.1.0.1" {
		t.Errorf("addresses: router %s (gateway %s), node %s", p.nets[0].public, p.nets[0].gateway, p.nodes[0].ip)
	}
}

func TestPlanTooSmall(t *testing.T) {
	yaml := "networks:\n  - {name: a, subnet: 10.1.0.0/29}\nnodes:\n"
	for _, n := range []string{"a1", "a2", "a3", "a4", "a5", "a6"} {
		yaml += "  - {name: " + n + ", network: a}\n"
	}
	sc, err := Parse("x", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := makePlan(sc, "p"); err == nil || !strings.Contains(err.Error(), "too few addresses") {
		t.Errorf("makePlan = %v, want too few addresses", err)
	}
	sc.Nodes = sc.Nodes[:5]
	if _, err := makePlan(sc, "p"); err != nil {
		t.Errorf("makePlan with 5 nodes on a /29: %v", err)
	}
}

// Explicit addresses are kept and skipped by the others; a node that moves
// takes the next free address of its new network.
func TestPlanExplicitIPsAndMove(t *testing.T) {
	yaml := `networks:
  - {name: internet, subnet: 11.0.0.0/8}
  - {name: home, subnet: 10.1.0.0/24, router: {nat: cone}}
  - {name: cafe, subnet: 10.2.0.0/24, router: {nat: cone}}
nodes:
  - {name: a1, network: internet, ip: 11.1.0.1}
  - {name: a2, network: internet, ip: 11.0.0.3}
  - {name: a3, network: internet}
  - {name: alice, network: home}
steps:
  - {move: alice, to: cafe}
`
	sc, err := Parse("x", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Steps[0].Kind != StepMove || sc.Steps[0].To != "cafe" || sc.Steps[0].Nodes[0] != "alice" {
		t.Fatalf("move step = %+v", sc.Steps[0])
	}
	p, err := makePlan(sc, "p")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, nd := range p.nodes {
		got[nd.spec.Name] = nd.ip.String()
	}
	// Routers take 11.0.0.1 and .2; a2 holds .3, so a3 gets .4.
	want := map[string]string{"a1": "11.1.0.1", "a2": "11.0.0.3", "a3": "11.0.0.4", "alice": "10.1.0.2"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	if a, err := p.take(p.net("cafe")); err != nil || a.String() != "10.2.0.2" {
		t.Errorf("a node moving to cafe gets %s, %v; want 10.2.0.2", a, err)
	}
}
