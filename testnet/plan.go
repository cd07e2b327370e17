package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
)

// Interface names. Names inside a namespace only need to be unique there,
// so they are fixed; every one is far below the kernel's 15 characters.
const (
	bridgeIf = "br0"  // the bridge in a network's switch namespace
	nodeIf   = "eth0" // a node's link, in its namespace
	innerIf  = "in0"  // a router's link to its network
	outerIf  = "out0" // a router's uplink to the internet segment
	gwPort   = "gw"   // the router's port on its network's bridge
)

// plan is where everything of one run lives: the namespaces, the ports on
// each bridge and the addresses. It is computed before anything is made.
type plan struct {
	prefix string
	nets   []*netPlan
	nodes  []*nodePlan

	// next and reserved give addresses out, at planning and to nodes
	// that move during a run (under mu).
	mu       sync.Mutex
	next     map[string]netip.Addr
	reserved map[netip.Addr]bool
	moves    int
}

type netPlan struct {
	spec *Network
	// ns holds the network's bridge (the "switch").
	ns string
	// router namespace, its address inside the network (the nodes'
	// gateway), its address on the internet segment, and its port on the
	// internet segment's bridge. Empty without a router.
	routerNS   string
	gateway    netip.Addr
	public     netip.Addr
	uplinkPort string
}

type nodePlan struct {
	spec *Node
	net  *netPlan
	ns   string
	ip   netip.Addr
	// port is the node's port on its network's bridge.
	port string
}

// newPrefix returns a fresh run prefix: "pctn" and 6 hex digits, so that
// runs never share a namespace name.
func newPrefix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return "pctn" + hex.EncodeToString(b)
}

// makePlan lays a scenario out. Addresses: a router is host 1 of its
// network; nodes take the next hosts in declaration order (from host 2, on
// every network). On the internet segment the routers take hosts from 1 in
// the order their networks are declared, then the internet's nodes follow.
func makePlan(sc *Scenario, prefix string) (*plan, error) {
	p := &plan{prefix: prefix, reserved: map[netip.Addr]bool{}}
	byName := map[string]*netPlan{}
	next := map[string]netip.Addr{}
	p.next = next
	for _, nd := range sc.Nodes {
		if nd.IP.IsValid() {
			p.reserved[nd.IP] = true
		}
	}
	var inet *netPlan
	for _, nw := range sc.Networks {
		np := &netPlan{spec: nw, ns: prefix + "-s-" + nw.Name}
		p.nets = append(p.nets, np)
		byName[nw.Name] = np
		next[nw.Name] = nw.Subnet.Addr().Next().Next()
		if nw.Name == Internet {
			inet = np
			next[nw.Name] = nw.Subnet.Addr().Next()
		}
	}
	take := p.take
	for i, np := range p.nets {
		if np.spec.Router == nil {
			continue
		}
		np.routerNS = prefix + "-r-" + np.spec.Name
		np.gateway = np.spec.Subnet.Addr().Next()
		np.uplinkPort = "r" + strconv.Itoa(i)
		var err error
		if np.public, err = take(inet); err != nil {
			return nil, err
		}
	}
	for i, nd := range sc.Nodes {
		np := byName[nd.Network]
		ip := nd.IP
		if !ip.IsValid() {
			var err error
			if ip, err = take(np); err != nil {
				return nil, err
			}
		}
		p.nodes = append(p.nodes, &nodePlan{spec: nd, net: np, ns: prefix + "-n-" + nd.Name, ip: ip, port: "n" + strconv.Itoa(i)})
	}
	return p, nil
}

// take gives out the next free address of a network.
func (p *plan) take(nw *netPlan) (netip.Addr, error) {
	a := p.next[nw.spec.Name]
	for p.reserved[a] {
		a = a.Next()
	}
	if !nw.spec.Subnet.Contains(a) || isBroadcast(nw.spec.Subnet, a) {
		return netip.Addr{}, fmt.Errorf("network %s: subnet %s has too few addresses for its nodes and routers", nw.spec.Name, nw.spec.Subnet)
	}
	p.next[nw.spec.Name] = a.Next()
	return a, nil
}

func isBroadcast(p netip.Prefix, a netip.Addr) bool {
	b := a.As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	mask := uint32(1)<<host - 1
	return v&mask == mask
}

// namespaces lists every namespace of the plan in the order they are made.
func (p *plan) namespaces() []string {
	var out []string
	for _, np := range p.nets {
		out = append(out, np.ns)
	}
	for _, np := range p.nets {
		if np.routerNS != "" {
			out = append(out, np.routerNS)
		}
	}
	for _, nd := range p.nodes {
		out = append(out, nd.ns)
	}
	return out
}

func (p *plan) net(name string) *netPlan {
	for _, np := range p.nets {
		if np.spec.Name == name {
			return np
		}
	}
	return nil
}

// largestNetwork is how many nodes the most crowded network holds.
func (p *plan) largestNetwork() int {
	count := map[string]int{}
	for _, nd := range p.nodes {
		count[nd.spec.Network]++
	}
	most := 0
	for _, c := range count {
		most = max(most, c)
	}
	return most
}
