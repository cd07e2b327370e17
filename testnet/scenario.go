package testnet

import (
	"net/netip"
	"time"
)

// Internet is the name of the shared segment that routers join and that
// nodes with public addresses (relays) sit on.
const Internet = "internet"

// DefaultInternet is the internet segment's subnet when a scenario does not
// declare one. Its addresses count as public for go-multiaddr
// (manet.IsPublicAddr), which hole punching needs; they never reach a real
// network because every link of a run lies between the run's own namespaces.
const DefaultInternet = "11.0.0.0/24"

// Defaults of a scenario.
const (
	// DefaultTimeout bounds a whole run when the scenario sets no timeout.
	DefaultTimeout = 10 * time.Minute
	// DefaultCommandTimeout bounds a command step without a within: deadline.
	DefaultCommandTimeout = 30 * time.Second
	// DefaultEventWithin is an event expectation's deadline when it sets none.
	DefaultEventWithin = 10 * time.Second
	// ReadyTimeout bounds how long a started node may take to answer on its
	// local API.
	ReadyTimeout = 30 * time.Second
	// StopTimeout is how long a node may take to exit after SIGTERM before
	// it is killed.
	StopTimeout = 10 * time.Second
	// Port is the TCP and UDP (QUIC) port every node listens on.
	Port = 4737
)

// Scenario is a parsed scenario file: the networks, the nodes on them and
// the steps to run. Get one from Parse or ParseFile; a Scenario is not
// changed by running it and may be run again.
type Scenario struct {
	// File is where the scenario came from, for messages.
	File string
	// Name and Description say what the scenario proves.
	Name        string
	Description string
	// Timeout bounds the whole run. Default DefaultTimeout.
	Timeout time.Duration
	// Networks in declaration order. The internet segment is among them
	// (named Internet) when the scenario declares it, when a router needs
	// it, or when a node sits on it.
	Networks []*Network
	// Nodes in declaration order.
	Nodes []*Node
	// Steps run in order.
	Steps []*Step
}

// NAT is how a router translates addresses.
type NAT string

// The kinds of router.
const (
	// NATNone routes without translating or filtering.
	NATNone NAT = "none"
	// NATCone masquerades and keeps source ports (endpoint-independent
	// mapping), and drops unsolicited inbound packets.
	NATCone NAT = "cone"
	// NATSymmetric masquerades with random ports (endpoint-dependent
	// mapping), and drops unsolicited inbound packets.
	NATSymmetric NAT = "symmetric"
)

// Network is a subnet: a bridge that its nodes (and its router) plug into.
type Network struct {
	Name   string
	Subnet netip.Prefix
	// Router, when not nil, joins the network to the internet segment.
	Router *Router
	Line   int
}

// Router joins a network to the internet segment.
type Router struct {
	NAT NAT
}

// Role is what a node runs.
type Role string

// The roles of a node.
const (
	// RolePeer runs `peercollab daemon`.
	RolePeer Role = "peer"
	// RoleRelay runs `peercollab relay`.
	RoleRelay Role = "relay"
)

// Node is one peercollab process and the namespace it runs in.
type Node struct {
	Name    string
	Network string
	Role    Role
	// DisplayName is the name its identity is created with. Default: Name.
	DisplayName string
	// Flags are added to the daemon's (or relay's) command line; they may
	// hold templates. Without a --listen among them the node listens on TCP
	// and QUIC on Port of its own address.
	Flags []string
	// Env is added to the process's environment, as KEY=VALUE.
	Env []string
	// Autostart starts the node before the first step. Default true.
	Autostart bool
	// IP, when valid, is the node's address, which must lie in its
	// network's subnet; other nodes and routers skip it. Stand-ins for the
	// public DHT need one each in its own /16 (kubo's routing table takes
	// at most 3 peers per /16). Default: the next free host.
	IP   netip.Addr
	Line int
}

// StepKind says what a step does.
type StepKind string

// The kinds of step.
const (
	StepRun      StepKind = "run"      // a peercollab CLI command on a node
	StepShell    StepKind = "sh"       // a shell command in a node's namespace
	StepEvent    StepKind = "event"    // an expected event in a node's stream
	StepStart    StepKind = "start"    // start nodes
	StepStop     StepKind = "stop"     // SIGTERM nodes and wait
	StepKill     StepKind = "kill"     // SIGKILL nodes
	StepRestart  StepKind = "restart"  // stop, then start nodes
	StepCut      StepKind = "cut"      // take a node's link or a router's uplink down
	StepHeal     StepKind = "heal"     // bring it up again
	StepNetem    StepKind = "netem"    // delay and loss on a link
	StepParallel StepKind = "parallel" // run the sub-steps at once
	StepMove     StepKind = "move"     // plug a stopped node into another network
)

// Status is an expected exit status: a number, or AnyNonzero.
type Status int

// AnyNonzero is the Status that matches every failing exit status.
const AnyNonzero Status = -1

// Step is one entry of a scenario's steps.
type Step struct {
	Kind StepKind
	// Name labels the step in the report. Default: a description of it.
	Name string
	Line int

	// Nodes the step acts on: the node of a run, sh or event step (more
	// than one runs the step on each at once), or the targets of start,
	// stop, kill and restart.
	Nodes []string
	// Args is a run step's command line, after the program name; the
	// words may hold templates.
	Args []string
	// Shell is an sh step's command, for sh -c; it may hold templates.
	Shell string
	// Event is an event step's event type.
	Event string

	// Status is a command's expected exit status. Default 0.
	Status Status
	// Stdout and Stderr, when not empty, must occur in the command's
	// output.
	Stdout, Stderr string
	// JSON conditions apply to a command's standard output or an event's
	// data.
	JSON []Condition
	// Count is how many matching events an event step needs. Default 1.
	Count int
	// SinceStart makes an event step count the events since the node last
	// started instead of since the step started.
	SinceStart bool
	// Within retries a command until it matches, or waits for an event,
	// up to this long. Zero: a command is tried once (bounded by
	// DefaultCommandTimeout); an event waits DefaultEventWithin.
	Within time.Duration

	// Link is what cut, heal and netem act on: a node's link to its
	// network, or a network's router uplink.
	Link string
	// Netem is a netem step's impairment; the zero value removes it.
	Netem Netem

	// Steps are a parallel step's sub-steps.
	Steps []*Step

	// To is the network a move step plugs its node into.
	To string
}

// Netem is an impairment of a link, applied in both directions: loss
// (nftables) and delay with jitter (tc netem, which needs a kernel with the
// netem queueing discipline).
type Netem struct {
	Delay, Jitter time.Duration
	// Loss is the share of packets dropped, in percent.
	Loss float64
}

// Op is how a condition compares.
type Op string

// The comparisons of a Condition.
const (
	// OpEquals: the value at the path equals Value (a string Value is
	// compared with the value's text, so "3" equals 3).
	OpEquals Op = "equals"
	// OpContains: an array at the path holds an element equal to Value, or
	// a string at the path contains Value.
	OpContains Op = "contains"
	// OpCount: the array at the path has Value elements.
	OpCount Op = "count"
	// OpExists: whether the path exists is Value (true or false).
	OpExists Op = "exists"
	// OpAtLeast and OpAtMost: the number at the path (or the length of
	// the array there) is at least, or at most, Value.
	OpAtLeast Op = "at_least"
	OpAtMost  Op = "at_most"
)

// Condition is a check on a JSON document, with a gjson path
// (https://github.com/tidwall/gjson/blob/master/SYNTAX.md).
type Condition struct {
	Path string
	Op   Op
	// Value is the expected value as decoded from YAML: string, int64,
	// uint64, float64, bool, nil, []any or map[string]any. Strings may hold
	// templates.
	Value any
	Line  int
}
