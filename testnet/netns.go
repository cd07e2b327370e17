package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Preflight reports, in one sentence, what this machine lacks to run
// scenarios: root, ip (iproute2) or nft (nftables). needTC adds tc, which
// netem steps use.
func Preflight(needTC bool) error {
	if err := supported(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("testnet needs root to create network namespaces; run it as root (for example with sudo)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("testnet needs the ip command (iproute2); install it with `apt-get install -y iproute2`")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("testnet needs the nft command (nftables) for its routers; install it with `apt-get install -y nftables`")
	}
	if _, err := exec.LookPath("tc"); needTC && err != nil {
		return errors.New("testnet needs the tc command (iproute2) for netem steps; install it with `apt-get install -y iproute2`")
	}
	return nil
}

// network is the built network of a run: it remembers every namespace it
// made so that teardown removes exactly those.
type network struct {
	plan *plan

	mu      sync.Mutex
	made    []string // namespaces, in the order they were made
	removed bool
}

// sys runs a command of the machine (ip, tc, nft) and turns a failure into
// an error that quotes the command and what it printed.
func sys(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = childAttrs(false)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(out.String()), " ")
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
	}
	return nil
}

func ipn(ctx context.Context, ns string, args ...string) error {
	return sys(ctx, "", "ip", append([]string{"-n", ns}, args...)...)
}

// veth makes a veth pair with each end directly in its namespace, so no
// end ever exists in the root namespace.
func veth(ctx context.Context, ns1, name1, ns2, name2 string) error {
	return sys(ctx, "", "ip", "link", "add", name1, "netns", ns1, "type", "veth", "peer", "name", name2, "netns", ns2)
}

// Neighbour (ARP) table sizes for crowded subnets. The kernel's table is
// shared by every namespace, and its default hard limit (gc_thresh3, 1,024
// entries) is too small from about 33 nodes on one subnet, which needs about
// N×(N−1) entries: dials then time out although nothing is wrong with the
// nodes (TESTNETS.md).
var neighbourThresholds = [3]int{16384, 32768, 65536}

// raiseNeighbourTable raises the neighbour table's thresholds to
// neighbourThresholds, never lowering them, and says what it changed.
func raiseNeighbourTable() (changed string, err error) {
	var parts []string
	for i, want := range neighbourThresholds {
		path := fmt.Sprintf("/proc/sys/net/ipv4/neigh/default/gc_thresh%d", i+1)
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		have, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || have >= want {
			continue
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(want)), 0o644); err != nil {
			return "", fmt.Errorf("raise the neighbour table: %w", err)
		}
		parts = append(parts, fmt.Sprintf("gc_thresh%d %d -> %d", i+1, have, want))
	}
	if len(parts) == 0 {
		return "", nil
	}
	return "raised the kernel's neighbour (ARP) table for crowded subnets: " + strings.Join(parts, ", "), nil
}

// build makes the plan's namespaces, bridges, links, routes and NAT rules.
// On error, what it made stays recorded for remove.
func (n *network) build(ctx context.Context) error {
	p := n.plan
	for _, ns := range p.namespaces() {
		if err := sys(ctx, "", "ip", "netns", "add", ns); err != nil {
			return err
		}
		n.mu.Lock()
		n.made = append(n.made, ns)
		n.mu.Unlock()
		if err := ipn(ctx, ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	// Switches: one bridge each, multicast flooded (no snooping) so that
	// mDNS reaches every port.
	for _, np := range p.nets {
		if err := ipn(ctx, np.ns, "link", "add", bridgeIf, "type", "bridge", "mcast_snooping", "0", "stp_state", "0", "forward_delay", "0"); err != nil {
			return err
		}
		if err := ipn(ctx, np.ns, "link", "set", bridgeIf, "up"); err != nil {
			return err
		}
	}
	inet := p.net(Internet)
	for _, np := range p.nets {
		if np.routerNS != "" {
			if err := n.buildRouter(ctx, np, inet); err != nil {
				return err
			}
		}
	}
	// Nodes in parallel: each touches only its own namespace and one port
	// of a bridge.
	errs := make([]error, len(p.nodes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, nd := range p.nodes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = n.buildNode(ctx, nd, inet)
		})
	}
	wg.Wait()
	if err := joinErrs(errs); err != nil {
		return err
	}
	// Subnets routed without NAT are reachable from the internet: every
	// other router and every node on the internet learns the way there.
	for _, r := range p.nets {
		if r.routerNS == "" || r.spec.Router.NAT != NATNone {
			continue
		}
		for _, other := range p.nets {
			if other.routerNS != "" && other != r {
				if err := ipn(ctx, other.routerNS, "route", "add", r.spec.Subnet.String(), "via", r.public.String()); err != nil {
					return err
				}
			}
		}
		for _, nd := range p.nodes {
			if nd.net == inet {
				if err := ipn(ctx, nd.ns, "route", "add", r.spec.Subnet.String(), "via", r.public.String()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// attach plugs a veth end into a switch's bridge.
func attach(ctx context.Context, sw, port string) error {
	return ipn(ctx, sw, "link", "set", port, "master", bridgeIf, "up")
}

func (n *network) buildRouter(ctx context.Context, np, inet *netPlan) error {
	bits := strconv.Itoa(np.spec.Subnet.Bits())
	steps := []func() error{
		func() error { return veth(ctx, np.routerNS, innerIf, np.ns, gwPort) },
		func() error { return attach(ctx, np.ns, gwPort) },
		func() error {
			return ipn(ctx, np.routerNS, "addr", "add", np.gateway.String()+"/"+bits, "dev", innerIf)
		},
		func() error { return ipn(ctx, np.routerNS, "link", "set", innerIf, "up") },
		func() error { return veth(ctx, np.routerNS, outerIf, inet.ns, np.uplinkPort) },
		func() error { return attach(ctx, inet.ns, np.uplinkPort) },
		func() error {
			return ipn(ctx, np.routerNS, "addr", "add", np.public.String()+"/"+strconv.Itoa(inet.spec.Subnet.Bits()), "dev", outerIf)
		},
		func() error { return ipn(ctx, np.routerNS, "link", "set", outerIf, "up") },
		// ip_forward is per namespace and starts at 0.
		func() error {
			return sys(ctx, "", "ip", "netns", "exec", np.routerNS, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
		},
	}
	if np.spec.Router.NAT != NATNone {
		steps = append(steps, func() error {
			return sys(ctx, natRules(np.spec.Router.NAT), "ip", "netns", "exec", np.routerNS, "nft", "-f", "-")
		})
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return fmt.Errorf("router of %s: %w", np.spec.Name, err)
		}
	}
	return nil
}

// natRules is the nftables ruleset of a NAT router: masquerade on the
// uplink (random ports for a symmetric NAT), and a home router's firewall
// that lets replies in and silently drops everything unsolicited.
func natRules(nat NAT) string {
	masq := "masquerade"
	if nat == NATSymmetric {
		masq = "masquerade random"
	}
	return `table ip testnet {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "` + outerIf + `" ` + masq + `
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "` + outerIf + `" ct state established,related accept
		iifname "` + outerIf + `" drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "` + outerIf + `" ct state established,related accept
		iifname "` + outerIf + `" drop
	}
}
`
}

func (n *network) buildNode(ctx context.Context, nd *nodePlan, inet *netPlan) error {
	bits := strconv.Itoa(nd.net.spec.Subnet.Bits())
	steps := []func() error{
		func() error { return veth(ctx, nd.ns, nodeIf, nd.net.ns, nd.port) },
		func() error { return attach(ctx, nd.net.ns, nd.port) },
		func() error { return ipn(ctx, nd.ns, "addr", "add", nd.ip.String()+"/"+bits, "dev", nodeIf) },
		func() error { return ipn(ctx, nd.ns, "link", "set", nodeIf, "up") },
	}
	if nd.net.routerNS != "" {
		steps = append(steps, func() error { return ipn(ctx, nd.ns, "route", "add", "default", "via", nd.net.gateway.String()) })
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return fmt.Errorf("node %s: %w", nd.spec.Name, err)
		}
	}
	return nil
}

// move plugs node name's namespace into network to: its link is removed
// (both ends of the veth go), a new one joins the other network's bridge,
// and the node gets that network's next free address and its router as
// gateway. The node must not be running. The node's plan is updated, so
// templates such as {{NODE.ip}} give the new address.
func (n *network) move(ctx context.Context, name, to string) error {
	var nd *nodePlan
	for _, x := range n.plan.nodes {
		if x.spec.Name == name {
			nd = x
		}
	}
	dst := n.plan.net(to)
	if nd == nil || dst == nil {
		return fmt.Errorf("move: no node %q or network %q", name, to)
	}
	n.plan.mu.Lock()
	ip, err := n.plan.take(dst)
	n.plan.moves++
	port := "m" + strconv.Itoa(n.plan.moves)
	n.plan.mu.Unlock()
	if err != nil {
		return err
	}
	if err := ipn(ctx, nd.ns, "link", "del", nodeIf); err != nil {
		return fmt.Errorf("move %s: %w", name, err)
	}
	nd.net, nd.ip, nd.port = dst, ip, port
	inet := n.plan.net(Internet)
	return n.buildNode(ctx, nd, inet)
}

// linkEnds returns the two ends of a node's link or a router's uplink, as
// (namespace, interface) pairs: the inside end first.
func (n *network) linkEnds(name string) (ns1, if1, ns2, if2 string) {
	for _, nd := range n.plan.nodes {
		if nd.spec.Name == name {
			return nd.ns, nodeIf, nd.net.ns, nd.port
		}
	}
	np := n.plan.net(name)
	return np.routerNS, outerIf, n.plan.net(Internet).ns, np.uplinkPort
}

// setLink cuts (up false) or heals a link by setting its switch-side end
// down or up: the cable is pulled at the switch, so the inside keeps its
// address and routes, as with a real unplugged cable.
func (n *network) setLink(ctx context.Context, name string, up bool) error {
	_, _, sw, port := n.linkEnds(name)
	state := "down"
	if up {
		state = "up"
	}
	return ipn(ctx, sw, "link", "set", port, state)
}

// netem replaces the impairment of a link: loss by nftables on the inside
// end (a random share of packets dropped on ingress and on egress, so each
// direction loses that share), delay and jitter by tc netem on both ends
// (so each direction is delayed). The zero Netem removes both.
func (n *network) netem(ctx context.Context, name string, ne Netem) error {
	ns1, if1, ns2, if2 := n.linkEnds(name)
	ends := [][2]string{{ns1, if1}, {ns2, if2}}
	// Clear what an earlier step set.
	err := sys(ctx, "", "ip", "netns", "exec", ns1, "nft", "delete", "table", "netdev", lossTable)
	if err != nil && !strings.Contains(err.Error(), "No such file") {
		return err
	}
	for _, end := range ends {
		err := sys(ctx, "", "tc", "-n", end[0], "qdisc", "del", "dev", end[1], "root")
		if err != nil && !strings.Contains(err.Error(), "No such file") && !strings.Contains(err.Error(), "handle of zero") {
			return err
		}
	}
	if ne.Loss > 0 {
		if err := sys(ctx, lossRules(if1, ne.Loss), "ip", "netns", "exec", ns1, "nft", "-f", "-"); err != nil {
			return err
		}
	}
	if ne.Delay == 0 {
		return nil
	}
	for _, end := range ends {
		args := []string{"-n", end[0], "qdisc", "replace", "dev", end[1], "root", "netem", "delay", usec(ne.Delay)}
		if ne.Jitter > 0 {
			args = append(args, usec(ne.Jitter))
		}
		if err := sys(ctx, "", "tc", args...); err != nil {
			if strings.Contains(err.Error(), "qdisc kind is unknown") {
				return errors.New("this kernel has no netem queueing discipline (CONFIG_NET_SCH_NETEM), so delay and jitter cannot be emulated here; loss works without it")
			}
			return err
		}
	}
	return nil
}

// lossTable is the nftables table of a link's packet loss.
const lossTable = "testnet_loss"

// lossRules drops loss percent of the packets that enter and leave dev.
func lossRules(dev string, loss float64) string {
	const scale = 100000
	limit := strconv.Itoa(int(loss / 100 * scale))
	rule := "numgen random mod " + strconv.Itoa(scale) + " < " + limit + " drop"
	if loss >= 100 {
		rule = "drop"
	}
	return `table netdev ` + lossTable + ` {
	chain ingress {
		type filter hook ingress device "` + dev + `" priority filter; policy accept;
		` + rule + `
	}
	chain egress {
		type filter hook egress device "` + dev + `" priority filter; policy accept;
		` + rule + `
	}
}
`
}

func usec(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) + "us" }

// remove deletes every namespace the network made, which takes their
// links, bridges and rules with them. Processes must be gone first (a
// process inside keeps a namespace alive). It is idempotent.
func (n *network) remove(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.removed {
		return nil
	}
	n.removed = true
	var errs []error
	for i := len(n.made) - 1; i >= 0; i-- {
		if err := sys(ctx, "", "ip", "netns", "del", n.made[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrs(errs)
}
