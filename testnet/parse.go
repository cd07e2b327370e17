package testnet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// ParseError is a mistake in a scenario file, with the line it is on.
type ParseError struct {
	File string
	Line int // 0 when the mistake is not on one line
	Msg  string
}

func (e *ParseError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	}
	return e.Msg
}

// ParseFile reads and parses the scenario file at path.
func ParseFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read scenario %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses a scenario; file names it in error messages. Every mistake
// is a *ParseError with its line: unknown keys, wrong types, unknown node
// or network names, templates that name nothing.
func Parse(file string, data []byte) (*Scenario, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye interface {
			GetMessage() string
			GetToken() *token.Token
		}
		if errors.As(err, &ye) && ye.GetToken() != nil {
			return nil, &ParseError{File: file, Line: ye.GetToken().Position.Line, Msg: "YAML: " + ye.GetMessage()}
		}
		return nil, &ParseError{File: file, Msg: "YAML: " + err.Error()}
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, &ParseError{File: file, Msg: "the file must hold one YAML document, a mapping with networks, nodes and steps"}
	}
	p := &scenarioParser{sc: &Scenario{File: file, Timeout: DefaultTimeout}}
	if err := p.top(f.Docs[0].Body); err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.File = file
		}
		return nil, err
	}
	return p.sc, nil
}

// scenarioParser turns the YAML tree into a Scenario.
type scenarioParser struct {
	sc *Scenario
	// ipNodes are where nodes with an explicit ip declared it.
	ipNodes map[*Node]ast.Node
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

func (p *scenarioParser) checkName(n ast.Node, name, what string) error {
	if !nameRE.MatchString(name) {
		return errAt(n, "%s name %q must start with a lowercase letter and hold at most 32 lowercase letters, digits, - and _", what, name)
	}
	switch name {
	case "run", "self":
		return errAt(n, "%q is reserved for templates; name the %s otherwise", name, what)
	}
	for _, nw := range p.sc.Networks {
		if nw.Name == name {
			return errAt(n, "the name %q is taken by the network on line %d", name, nw.Line)
		}
	}
	for _, nd := range p.sc.Nodes {
		if nd.Name == name {
			return errAt(n, "the name %q is taken by the node on line %d", name, nd.Line)
		}
	}
	return nil
}

func (p *scenarioParser) top(body ast.Node) error {
	var networks, nodes, steps ast.Node
	err := fields(body, "the scenario", []string{"name", "description", "timeout", "networks", "nodes", "steps"}, func(k string, v ast.Node) (err error) {
		switch k {
		case "name":
			p.sc.Name, err = str(v, "name")
		case "description":
			p.sc.Description, err = str(v, "description")
		case "timeout":
			p.sc.Timeout, err = duration(v, "timeout")
		case "networks":
			networks = v
		case "nodes":
			nodes = v
		case "steps":
			steps = v
		}
		return err
	})
	if err != nil {
		return err
	}
	if networks == nil {
		return errAt(body, "the scenario declares no networks")
	}
	if err := p.networks(networks); err != nil {
		return err
	}
	if nodes == nil {
		return errAt(body, "the scenario declares no nodes")
	}
	if err := p.nodes(nodes); err != nil {
		return err
	}
	if err := p.addInternet(); err != nil {
		return err
	}
	if err := p.checkIPs(); err != nil {
		return err
	}
	if steps != nil {
		list, err := seqOf(steps, "steps")
		if err != nil {
			return err
		}
		for _, s := range list {
			st, err := p.step(s)
			if err != nil {
				return err
			}
			p.sc.Steps = append(p.sc.Steps, st)
		}
	}
	// Templates of node flags may name any node, so check them last.
	for _, nd := range p.sc.Nodes {
		for _, f := range append(slices.Clone(nd.Flags), nd.Env...) {
			if err := p.checkTemplates(f, nd.Line, nd.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *scenarioParser) networks(n ast.Node) error {
	list, err := seqOf(n, "networks")
	if err != nil {
		return err
	}
	for _, item := range list {
		nw := &Network{Line: lineOf(item)}
		var nameNode ast.Node
		err := fields(item, "a network", []string{"name", "subnet", "router"}, func(k string, v ast.Node) (err error) {
			switch k {
			case "name":
				nameNode = v
				nw.Name, err = str(v, "name")
			case "subnet":
				var s string
				if s, err = str(v, "subnet"); err != nil {
					return err
				}
				pfx, perr := netip.ParsePrefix(s)
				if perr != nil || !pfx.Addr().Is4() || pfx.Bits() > 29 || pfx.Bits() < 8 {
					return errAt(v, "subnet must be an IPv4 prefix from /8 to /29 such as 10.1.0.0/24, not %q", s)
				}
				if pfx.Masked() != pfx {
					return errAt(v, "subnet %s has host bits set; write %s", s, pfx.Masked())
				}
				nw.Subnet = pfx
			case "router":
				nw.Router = &Router{}
				err = fields(v, "a router", []string{"nat"}, func(k string, v ast.Node) error {
					s, err := str(v, "nat")
					if err != nil {
						return err
					}
					switch NAT(s) {
					case NATNone, NATCone, NATSymmetric:
						nw.Router.NAT = NAT(s)
						return nil
					}
					return errAt(v, "nat must be none, cone or symmetric, not %q", s)
				})
				if err == nil && nw.Router.NAT == "" {
					err = errAt(v, "a router needs nat: none, cone or symmetric")
				}
			}
			return err
		})
		if err != nil {
			return err
		}
		if nameNode == nil {
			return errAt(item, "a network needs a name")
		}
		if nw.Name != Internet {
			if err := p.checkName(nameNode, nw.Name, "network"); err != nil {
				return err
			}
		} else if slices.ContainsFunc(p.sc.Networks, func(o *Network) bool { return o.Name == Internet }) {
			return errAt(nameNode, "the internet segment is declared twice")
		}
		if !nw.Subnet.IsValid() {
			return errAt(item, "network %s needs a subnet such as 10.1.0.0/24", nw.Name)
		}
		if nw.Name == Internet && nw.Router != nil {
			return errAt(item, "the internet segment has no router; routers join other networks to it")
		}
		p.sc.Networks = append(p.sc.Networks, nw)
	}
	return nil
}

func (p *scenarioParser) network(name string) *Network {
	for _, nw := range p.sc.Networks {
		if nw.Name == name {
			return nw
		}
	}
	return nil
}

// addInternet adds the internet segment when something needs it and the
// scenario did not declare it, and checks that subnets that meet do not
// overlap.
func (p *scenarioParser) addInternet() error {
	needed := slices.ContainsFunc(p.sc.Networks, func(nw *Network) bool { return nw.Router != nil }) ||
		slices.ContainsFunc(p.sc.Nodes, func(nd *Node) bool { return nd.Network == Internet })
	inet := p.network(Internet)
	if inet == nil && needed {
		inet = &Network{Name: Internet, Subnet: netip.MustParsePrefix(DefaultInternet)}
		p.sc.Networks = append(p.sc.Networks, inet)
	}
	if inet == nil {
		return nil
	}
	// Everything reachable from the internet must not overlap: the internet
	// itself and the subnets routed without NAT. A NATed subnet must not
	// overlap those either (its router could not tell them apart).
	var routed []*Network
	for _, nw := range p.sc.Networks {
		if nw.Router != nil && nw.Router.NAT == NATNone {
			routed = append(routed, nw)
		}
	}
	for _, nw := range p.sc.Networks {
		if nw == inet || nw.Router == nil {
			continue
		}
		if nw.Subnet.Overlaps(inet.Subnet) {
			return &ParseError{Line: nw.Line, Msg: fmt.Sprintf("network %s: subnet %s overlaps the internet segment's %s", nw.Name, nw.Subnet, inet.Subnet)}
		}
		for _, r := range routed {
			if r != nw && nw.Subnet.Overlaps(r.Subnet) {
				return &ParseError{Line: nw.Line, Msg: fmt.Sprintf("network %s: subnet %s overlaps %s of network %s, which is routed without NAT", nw.Name, nw.Subnet, r.Subnet, r.Name)}
			}
		}
	}
	return nil
}

func (p *scenarioParser) nodes(n ast.Node) error {
	list, err := seqOf(n, "nodes")
	if err != nil {
		return err
	}
	if p.ipNodes == nil {
		p.ipNodes = map[*Node]ast.Node{}
	}
	ipNodes := p.ipNodes
	for _, item := range list {
		nd := &Node{Line: lineOf(item), Role: RolePeer, Autostart: true}
		var nameNode, netNode ast.Node
		err := fields(item, "a node", []string{"name", "network", "role", "display_name", "flags", "env", "autostart", "ip"}, func(k string, v ast.Node) (err error) {
			switch k {
			case "name":
				nameNode = v
				nd.Name, err = str(v, "name")
			case "network":
				netNode = v
				nd.Network, err = str(v, "network")
			case "role":
				var s string
				if s, err = str(v, "role"); err != nil {
					return err
				}
				switch Role(s) {
				case RolePeer, RoleRelay:
					nd.Role = Role(s)
				default:
					return errAt(v, "role must be peer or relay, not %q", s)
				}
			case "display_name":
				nd.DisplayName, err = str(v, "display_name")
			case "flags":
				nd.Flags, err = strs(v, "flags")
			case "env":
				nd.Env, err = envList(v)
			case "autostart":
				nd.Autostart, err = boolean(v, "autostart")
			case "ip":
				var s string
				if s, err = str(v, "ip"); err != nil {
					return err
				}
				a, perr := netip.ParseAddr(s)
				if perr != nil || !a.Is4() {
					return errAt(v, "ip must be an IPv4 address such as 11.1.0.1, not %q", s)
				}
				nd.IP = a
				ipNodes[nd] = v
			}
			return err
		})
		if err != nil {
			return err
		}
		if nameNode == nil {
			return errAt(item, "a node needs a name")
		}
		if err := p.checkName(nameNode, nd.Name, "node"); err != nil {
			return err
		}
		if netNode == nil {
			return errAt(item, "node %s needs a network", nd.Name)
		}
		if nd.Network != Internet && p.network(nd.Network) == nil {
			return errAt(netNode, "node %s: no network is named %q", nd.Name, nd.Network)
		}
		if nd.DisplayName == "" {
			nd.DisplayName = nd.Name
		}
		p.sc.Nodes = append(p.sc.Nodes, nd)
	}
	return nil
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func envList(n ast.Node) ([]string, error) {
	var out []string
	pairs, ok := pairsOf(n)
	if !ok {
		return nil, errAt(n, "env must be a mapping of variable names to values")
	}
	for _, kv := range pairs {
		k, err := str(kv.Key, "an env name")
		if err != nil {
			return nil, err
		}
		if !envKeyRE.MatchString(k) {
			return nil, errAt(kv.Key, "%q is not an environment variable name", k)
		}
		v, err := str(kv.Value, "env "+k)
		if err != nil {
			return nil, err
		}
		out = append(out, k+"="+v)
	}
	return out, nil
}

// checkIPs checks the nodes' explicit addresses: each in its network's
// subnet, neither its network address nor its broadcast nor host 1 (a
// router's, or the internet's first router's), and no two the same.
func (p *scenarioParser) checkIPs() error {
	taken := map[netip.Addr]string{}
	for _, nd := range p.sc.Nodes {
		if !nd.IP.IsValid() {
			continue
		}
		at := p.ipNodes[nd]
		nw := p.network(nd.Network)
		if nw == nil || !nw.Subnet.Contains(nd.IP) || nd.IP == nw.Subnet.Addr() || isBroadcast(nw.Subnet, nd.IP) || nd.IP == nw.Subnet.Addr().Next() {
			return errAt(at, "node %s: ip %s is not a host of network %s's subnet other than its first (%s)", nd.Name, nd.IP, nd.Network, subnetOf(nw))
		}
		if other, ok := taken[nd.IP]; ok {
			return errAt(at, "node %s: ip %s is taken by node %s", nd.Name, nd.IP, other)
		}
		taken[nd.IP] = nd.Name
	}
	return nil
}

func subnetOf(nw *Network) string {
	if nw == nil {
		return "none"
	}
	return nw.Subnet.String()
}
