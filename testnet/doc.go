// Package testnet runs scripted test networks of real peercollab nodes in
// Linux network namespaces.
//
// A scenario (YAML, see Parse and README.md) declares networks (subnets,
// each a bridge; optionally joined to a shared "internet" segment by a
// router that routes, or masquerades as a cone or a symmetric NAT), nodes
// (a `peercollab daemon` or `peercollab relay` process each, in a
// namespace of its own on one network) and steps: CLI commands and shell
// commands on nodes, starting, stopping and killing nodes, cutting links
// and impairing them with netem, and expectations with deadlines on
// command output (exit status, text, JSON through gjson paths) and on the
// nodes' event streams.
//
// Run builds the network, runs the steps and removes everything it made,
// also on failure and when its context is cancelled. Every link of a run
// is a veth pair whose two ends are created directly inside the run's own
// namespaces, and nothing is attached to the root namespace, so no packet
// of a run can leave it; that is what makes it safe to give the internet
// segment addresses that look public (DefaultInternet), which go-libp2p's
// hole punching needs.
//
// Package testnettest runs scenarios from Go tests.
package testnet
