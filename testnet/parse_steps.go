package testnet

// The steps of a scenario: what each kind takes, its templates, links,
// netem settings, commands and JSON conditions.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// stepKinds are the keys that say what a step is, and keysOf the other keys
// each kind takes.
var stepKinds = []StepKind{StepRun, StepShell, StepEvent, StepStart, StepStop, StepKill, StepRestart, StepCut, StepHeal, StepNetem, StepParallel, StepMove}

func keysOf(k StepKind) []string {
	switch k {
	case StepRun, StepShell:
		return []string{"name", "node", "status", "stdout", "stderr", "json", "within"}
	case StepEvent:
		return []string{"name", "node", "json", "count", "since", "within"}
	case StepMove:
		return []string{"name", "to"}
	}
	return []string{"name"}
}

func (p *scenarioParser) step(n ast.Node) (*Step, error) {
	if err := checkPlain(n); err != nil {
		return nil, err
	}
	st := &Step{Line: lineOf(n), Count: 1}
	all := []string{"name", "node", "status", "stdout", "stderr", "json", "count", "since", "within", "to"}
	for _, k := range stepKinds {
		all = append(all, string(k))
	}
	// First pass: which kind of step is it? The second pass checks the
	// other keys against that kind.
	var kindNode ast.Node
	pairs, _ := pairsOf(n)
	for _, kv := range pairs {
		k, ok := kv.Key.(*ast.StringNode)
		if !ok || !slices.Contains(stepKinds, StepKind(k.Value)) {
			continue
		}
		if st.Kind != "" {
			return nil, errAt(kv.Key, "a step does one thing, but this one has both %s and %s; split it in two", st.Kind, k.Value)
		}
		st.Kind, kindNode = StepKind(k.Value), kv.Value
	}
	if st.Kind == "" {
		if err := fields(n, "a step", all, func(string, ast.Node) error { return nil }); err != nil {
			return nil, err
		}
		var kinds []string
		for _, k := range stepKinds {
			kinds = append(kinds, string(k))
		}
		return nil, errAt(n, "a step needs one of: %s", strings.Join(kinds, ", "))
	}
	allowed := append(keysOf(st.Kind), string(st.Kind))
	var nodeNode, toNode ast.Node
	err := fields(n, "a "+string(st.Kind)+" step", allowed, func(k string, v ast.Node) (err error) {
		switch k {
		case "name":
			st.Name, err = str(v, "name")
		case "node":
			nodeNode = v
			st.Nodes, err = p.nodeNames(v, "node")
		case "status":
			if s, _ := str(v, "status"); s == "nonzero" {
				st.Status = AnyNonzero
				return nil
			}
			var i int
			i, err = integer(v, "status")
			if err == nil && (i < 0 || i > 255) {
				err = errAt(v, "status must be an exit status from 0 to 255, or nonzero")
			}
			st.Status = Status(i)
		case "stdout":
			st.Stdout, err = str(v, "stdout")
		case "stderr":
			st.Stderr, err = str(v, "stderr")
		case "json":
			st.JSON, err = p.conditions(v)
		case "count":
			st.Count, err = integer(v, "count")
			if err == nil && st.Count < 1 {
				err = errAt(v, "count must be at least 1")
			}
		case "since":
			var s string
			s, err = str(v, "since")
			switch {
			case err != nil:
			case s == "start":
				st.SinceStart = true
			case s == "step":
			default:
				err = errAt(v, "since must be step (events since the step began) or start (since the node last started), not %q", s)
			}
		case "within":
			st.Within, err = duration(v, "within")
		case "to":
			toNode = v
			if st.To, err = str(v, "to"); err == nil && (st.To == Internet || p.network(st.To) == nil) {
				err = errAt(v, "to: no network other than the internet is named %q", st.To)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch st.Kind {
	case StepRun:
		st.Args, err = p.command(kindNode)
	case StepShell:
		st.Shell, err = str(kindNode, "sh")
	case StepEvent:
		st.Event, err = str(kindNode, "event")
	case StepStart, StepStop, StepKill, StepRestart:
		st.Nodes, err = p.nodeNames(kindNode, string(st.Kind))
	case StepCut, StepHeal:
		st.Link, err = p.link(kindNode)
	case StepNetem:
		err = p.netem(kindNode, st)
	case StepMove:
		if st.Nodes, err = p.nodeNames(kindNode, "move"); err == nil && len(st.Nodes) != 1 {
			err = errAt(kindNode, "move takes one node")
		}
		if err == nil && toNode == nil {
			err = errAt(n, "a move step needs to: the network to plug the node into")
		}
		if err == nil && slices.ContainsFunc(p.sc.Nodes, func(nd *Node) bool { return nd.Name == st.Nodes[0] && nd.Network == Internet }) {
			err = errAt(kindNode, "move: %s sits on the internet segment, which has no other network to move to", st.Nodes[0])
		}
	case StepParallel:
		var list []ast.Node
		if list, err = seqOf(kindNode, "parallel"); err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, errAt(kindNode, "a parallel group needs steps")
		}
		for _, s := range list {
			sub, err := p.step(s)
			if err != nil {
				return nil, err
			}
			st.Steps = append(st.Steps, sub)
		}
	}
	if err != nil {
		return nil, err
	}
	switch st.Kind {
	case StepRun, StepShell, StepEvent:
		if nodeNode == nil {
			return nil, errAt(n, "a %s step needs node: the node it runs on", st.Kind)
		}
	}
	return st, p.stepTemplates(st)
}

// stepTemplates checks the templates of every text of a step.
func (p *scenarioParser) stepTemplates(st *Step) error {
	self := ""
	if len(st.Nodes) > 0 && (st.Kind == StepRun || st.Kind == StepShell || st.Kind == StepEvent) {
		self = st.Nodes[0]
	}
	texts := append([]string{st.Shell, st.Stdout, st.Stderr}, st.Args...)
	for _, t := range texts {
		if err := p.checkTemplates(t, st.Line, self); err != nil {
			return err
		}
	}
	for _, c := range st.JSON {
		if err := p.checkTemplates(c.Path, c.Line, self); err != nil {
			return err
		}
		if s, ok := c.Value.(string); ok {
			if err := p.checkTemplates(s, c.Line, self); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *scenarioParser) checkTemplates(s string, line int, self string) error {
	_, err := expand(s, func(name, field string) (string, error) {
		if name == "self" {
			if self == "" {
				return "", fmt.Errorf("{{self.%s}} is only for steps and nodes that name a node", field)
			}
			name = self
		}
		if !slices.Contains(p.templateFields(name), field) {
			if p.templateFields(name) == nil {
				return "", fmt.Errorf("{{%s.%s}} names no node or network", name, field)
			}
			return "", fmt.Errorf("{{%s.%s}}: %s has no %s; it has %s", name, field, name, field, strings.Join(p.templateFields(name), ", "))
		}
		return "", nil
	})
	if err != nil {
		return &ParseError{Line: line, Msg: err.Error()}
	}
	return nil
}

// templateFields lists the template fields of a name: a node, a network or
// "run". Nil means the name is unknown.
func (p *scenarioParser) templateFields(name string) []string {
	if name == "run" {
		return []string{"dir", "id"}
	}
	for _, nd := range p.sc.Nodes {
		if nd.Name == name {
			return []string{"id", "ip", "addr", "home", "name"}
		}
	}
	for _, nw := range p.sc.Networks {
		if nw.Name == name {
			if nw.Router != nil {
				return []string{"subnet", "gateway", "public"}
			}
			return []string{"subnet"}
		}
	}
	if name == Internet {
		return []string{"subnet"}
	}
	return nil
}

func (p *scenarioParser) nodeNames(n ast.Node, what string) ([]string, error) {
	names, err := strs(n, what)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errAt(n, "%s names no node", what)
	}
	for _, name := range names {
		if !slices.ContainsFunc(p.sc.Nodes, func(nd *Node) bool { return nd.Name == name }) {
			return nil, errAt(n, "%s: no node is named %q", what, name)
		}
	}
	return names, nil
}

// link checks the target of cut, heal and netem: a node, or a network
// with a router.
func (p *scenarioParser) link(n ast.Node) (string, error) {
	name, err := str(n, "link")
	if err != nil {
		return "", err
	}
	if slices.ContainsFunc(p.sc.Nodes, func(nd *Node) bool { return nd.Name == name }) {
		return name, nil
	}
	if nw := p.network(name); nw != nil && nw.Router != nil {
		return name, nil
	}
	return "", errAt(n, "%q is neither a node nor a network with a router, so it has no link to act on", name)
}

func (p *scenarioParser) netem(n ast.Node, st *Step) error {
	var linkNode ast.Node
	err := fields(n, "netem", []string{"link", "delay", "jitter", "loss"}, func(k string, v ast.Node) (err error) {
		switch k {
		case "link":
			linkNode = v
			st.Link, err = p.link(v)
		case "delay":
			st.Netem.Delay, err = duration(v, "delay")
		case "jitter":
			st.Netem.Jitter, err = duration(v, "jitter")
		case "loss":
			var s string
			if s, err = str(v, "loss"); err != nil {
				return err
			}
			f, perr := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
			if perr != nil || f < 0 || f > 100 {
				return errAt(v, "loss must be a percentage from 0 to 100 such as 5%%, not %q", s)
			}
			st.Netem.Loss = f
		}
		return err
	})
	if err != nil {
		return err
	}
	if linkNode == nil {
		return errAt(n, "netem needs link: the node or routed network whose link to impair")
	}
	if st.Netem.Jitter > 0 && st.Netem.Delay == 0 {
		return errAt(n, "netem jitter needs a delay")
	}
	return nil
}

// command reads a run step's command: a list of words, or one string split
// like a shell would (quotes, backslashes; no variables or globs). A
// leading "peercollab" is dropped.
func (p *scenarioParser) command(n ast.Node) ([]string, error) {
	var words []string
	if seq, ok := n.(*ast.SequenceNode); ok {
		for _, v := range seq.Values {
			s, err := str(v, "a command word")
			if err != nil {
				return nil, err
			}
			words = append(words, s)
		}
	} else {
		s, err := str(n, "run")
		if err != nil {
			return nil, err
		}
		if words, err = splitWords(s); err != nil {
			return nil, errAt(n, "run: %v", err)
		}
	}
	if len(words) > 0 && words[0] == "peercollab" {
		words = words[1:]
	}
	if len(words) == 0 {
		return nil, errAt(n, "run needs a peercollab command such as `id --json`")
	}
	for _, w := range words {
		if w == "--home" || strings.HasPrefix(w, "--home=") {
			return nil, errAt(n, "run: the harness sets --home itself; drop it")
		}
	}
	return words, nil
}

func (p *scenarioParser) conditions(n ast.Node) ([]Condition, error) {
	list, err := seqOf(n, "json")
	if err != nil {
		return nil, err
	}
	var out []Condition
	for _, item := range list {
		c := Condition{Line: lineOf(item)}
		var pathSet bool
		err := fields(item, "a json condition", []string{"path", string(OpEquals), string(OpContains), string(OpCount), string(OpExists), string(OpAtLeast), string(OpAtMost)}, func(k string, v ast.Node) (err error) {
			if k == "path" {
				pathSet = true
				c.Path, err = str(v, "path")
				return err
			}
			if c.Op != "" {
				return errAt(v, "a json condition has one comparison, but this one has %s and %s", c.Op, k)
			}
			c.Op = Op(k)
			switch c.Op {
			case OpCount, OpAtLeast, OpAtMost:
				var i int
				i, err = integer(v, k)
				c.Value = float64(i)
			case OpExists:
				c.Value, err = boolean(v, "exists")
			default:
				c.Value, err = jsonValue(v, k)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if !pathSet {
			return nil, errAt(item, "a json condition needs path: a gjson path such as 0.peer_id or #")
		}
		if c.Op == "" {
			return nil, errAt(item, "a json condition needs one of equals, contains, count, exists, at_least, at_most")
		}
		out = append(out, c)
	}
	return out, nil
}
