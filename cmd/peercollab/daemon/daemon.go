// Package daemon holds the peercollab commands that run a node in their own
// process, and so link the whole node: daemon, relay, and init (which
// creates the identity that they use). main hands Commands to the command
// line (package cli), whose other commands are clients of the local API.
package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/cmd/peercollab/cli"
	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/localapi"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/web"
)

// Version is the peercollab version of the binary, for cli.Run.
const Version = node.Version

// Commands returns init, daemon and relay, for cli.Run, and web, the
// command line's client of the daemon's web page (--web).
func Commands(e *cli.Env) []*cobra.Command {
	d := env{e}
	return []*cobra.Command{d.initCmd(), d.daemonCmd(), d.relayCmd(), e.WebCmd()}
}

// env gives the commands the command line's shared Env.
type env struct{ *cli.Env }

// userError gives err the sentence, with its hint, that the local API
// would give it (an address in use, a daemon already running, a locked or
// damaged data directory), for the command line to print.
func userError(err error) error {
	if err == nil {
		return nil
	}
	return localapi.ToError(err)
}

// defaultName is user@host, the display name of a node nobody named.
func defaultName() string {
	name := "peercollab"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

// nodeFlags are the flags that daemon and relay share.
type nodeFlags struct {
	listen       []string
	profile      contacts.Profile
	reachability string
	scope        string
	bootstrap    []string
	metrics      string
	public       bool
	publicBoot   []string
	// web is the configuration file's web setting.
	web string
}

func (f *nodeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.listen, "listen", nil, fmt.Sprintf("multiaddr to listen on, repeatable (default TCP and QUIC on port %d of every interface)", node.DefaultPort))
	cmd.Flags().StringVar(&f.profile.DisplayName, "name", "", "display name if the identity has to be created (default user@host)")
	cmd.Flags().StringVar(&f.profile.Email, "email", "", "e-mail address if the identity has to be created")
	cmd.Flags().StringVar(&f.scope, "scope", "", "sign in to none, nearme, internet or all at start (default: as when last run, else all)")
	cmd.Flags().StringVar(&f.reachability, "reachability", "", "override AutoNAT: public or private (default: let it decide; a relay is public)")
	cmd.Flags().StringArrayVar(&f.bootstrap, "bootstrap", nil, "DHT bootstrap peer (multiaddr with /p2p/ID), repeatable; relays are bootstrap peers too")
	cmd.Flags().BoolVar(&f.public, "public", false, "public mode: find relays and meet contacts on the public Amino DHT (no server of your own; tells the public network this node's peer ID, addresses and when it is online; default off)")
	cmd.Flags().StringArrayVar(&f.publicBoot, "public-bootstrap", nil, "public DHT bootstrap peer (multiaddr with /p2p/ID), repeatable (default: the Amino DHT's bootstrap peers)")
	cmd.Flags().StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics at http://HOST:PORT/metrics (keep it on loopback, e.g. 127.0.0.1:9737; default off)")
}

// apply reads the configuration file of the home, then copies the flags
// given into cfg (flags win).
func (f *nodeFlags) apply(cmd *cobra.Command, home string, cfg *node.Config) error {
	if err := loadConfigFile(home, cfg, &f.web); err != nil {
		return err
	}
	if cmd.Flags().Changed("listen") {
		cfg.ListenAddrs = f.listen
	}
	if cmd.Flags().Changed("bootstrap") {
		cfg.Bootstrap = f.bootstrap
	}
	if cmd.Flags().Changed("metrics") {
		cfg.MetricsAddr = f.metrics
	}
	if cmd.Flags().Changed("public") {
		cfg.Public = f.public
	}
	if cmd.Flags().Changed("public-bootstrap") {
		if err := checkP2PAddrs(f.publicBoot); err != nil {
			return fmt.Errorf("--public-bootstrap: %w", err)
		}
		cfg.PublicBootstrap = f.publicBoot
	}
	if f.profile.DisplayName == "" {
		f.profile.DisplayName = defaultName()
	}
	if err := f.profile.Check(); err != nil {
		return err
	}
	cfg.Profile = f.profile
	if f.reachability != "" {
		cfg.Reachability = f.reachability
	}
	if f.scope != "" {
		if _, err := node.ParseScope(f.scope); err != nil {
			return err
		}
		cfg.Scope = f.scope
	}
	return nil
}

// webOff is the --web value that serves no page.
const webOff = "off"

// checkWebAddr checks a --web value: off, or a loopback HOST:PORT.
func checkWebAddr(addr string) error {
	if addr == webOff {
		return nil
	}
	_, err := web.ParseAddr(addr)
	return err
}

func (e env) daemonCmd() *cobra.Command {
	var f nodeFlags
	var relays []string
	var webAddr string
	cmd := &cobra.Command{
		Use:   "daemon [--listen MULTIADDR]... [--relay MULTIADDR]...",
		Short: "Run the node in the foreground (creates the identity on first run)",
		Long: `Run the node until interrupted (SIGINT or SIGTERM). On a data directory with no
identity it creates one first, named by --name (default user@host). The node
serves its local API on a unix socket in the data directory.

With --relay it keeps a reservation on each given relay
(/ip4/ADDR/tcp/PORT/p2p/RELAYID) while signed in to the Internet scope, so
that peers reach it through them, puts the relay addresses in its card, and
keeps a signed record of its addresses in the DHT the relays serve.

It serves a web page for people on a loopback address (127.0.0.1, port %d
or the next free one of 4748, 4758, ... 4808, else any free port; --web
HOST:PORT to choose, --web off for none); 'peercollab web --open' opens it.

With --public (off by default) it joins the public Amino DHT as a client
while signed in to the Internet scope: it finds relays among the DHT's
servers and keeps reservations with them, announces itself to each contact
under a key only the two can compute (changing every 12 hours), and looks a
contact up there when the card's addresses fail. The public network learns
the node's peer ID, addresses, when it is online and how many contacts it
announces itself to, not who they are. --public-bootstrap replaces the
Amino DHT's bootstrap peers.

Settings can also live in HOME/config.yaml (listen, relays, bootstrap, scope,
reachability, web, public, public_bootstrap, relay: {unlimited,
trusted_only, limit_duration, limit_data}); flags override it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := node.DefaultConfig(e.Home)
			if err := f.apply(cmd, e.Home, &cfg); err != nil {
				return userError(err)
			}
			if cmd.Flags().Changed("relay") {
				cfg.StaticRelays = relays
			}
			page := f.web
			if cmd.Flags().Changed("web") {
				page = webAddr
			}
			if err := checkWebAddr(page); page != "" && err != nil {
				return userError(err)
			}
			return userError(e.runNode(cmd, cfg, "daemon", page))
		},
	}
	cmd.Long = fmt.Sprintf(cmd.Long, web.DefaultPort)
	f.register(cmd)
	cmd.Flags().StringArrayVar(&relays, "relay", nil, "relay to keep a reservation with, repeatable")
	cmd.Flags().StringVar(&webAddr, "web", "", fmt.Sprintf("serve the web page on this loopback HOST:PORT, or off (default 127.0.0.1:%d, or the next free port of its series)", web.DefaultPort))
	return cmd
}

func (e env) relayCmd() *cobra.Command {
	var f nodeFlags
	var unlimited, trustedOnly bool
	var limitDuration time.Duration
	var limitData int64
	var amino bool
	cmd := &cobra.Command{
		Use:   "relay [--listen MULTIADDR]...",
		Short: "Run a public relay node (circuit relay v2) in the foreground",
		Long: `Run a node that relays connections for peers behind NAT (circuit relay v2),
serves the DHT (the peers' address records) and declares itself publicly
reachable. Run it on a host with a public address; give its address to peers
with 'peercollab daemon --relay ADDR'. It is a full node otherwise: it has an
identity and answers the local API.

Circuits are limited (2 minutes and 128 KiB each way by default), and
gossipsub opens no stream on a limited connection, so sessions and
subscriptions through a limited relay use the slower stream paths. With
--unlimited circuits have no limit; pair it with --trusted-only, which serves
only the relay's contacts and the peers it endorsed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := node.DefaultRelayConfig(e.Home)
			if err := f.apply(cmd, e.Home, &cfg); err != nil {
				return userError(err)
			}
			if cmd.Flags().Changed("unlimited") {
				cfg.RelayUnlimited = unlimited
			}
			if cmd.Flags().Changed("trusted-only") {
				cfg.RelayTrustedOnly = trustedOnly
			}
			if cmd.Flags().Changed("limit-duration") {
				cfg.RelayLimitDuration = limitDuration
			}
			if cmd.Flags().Changed("limit-data") {
				cfg.RelayLimitData = limitData
			}
			if amino {
				// A relay serves the Amino DHT itself; it does not also
				// join it as a client.
				cfg.AminoServer, cfg.Public = true, false
			}
			return userError(e.runNode(cmd, cfg, "relay", webOff))
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&unlimited, "unlimited", false, "no time or data limit on circuits")
	cmd.Flags().BoolVar(&trustedOnly, "trusted-only", false, "serve only this node's contacts and the peers it endorsed")
	cmd.Flags().DurationVar(&limitDuration, "limit-duration", 0, "how long a circuit may last (default 2m)")
	cmd.Flags().Int64Var(&limitData, "limit-data", 0, "bytes a circuit may carry each way (default 131072)")
	cmd.Flags().BoolVar(&amino, "amino", false, "also serve the Amino DHT (/ipfs/kad/1.0.0) as a server, joined through --public-bootstrap: a stand-in for the public network in test networks")
	return cmd
}

// runNode runs a node with its local API, and its web page on page (a
// loopback HOST:PORT, "" for the default, or off), until the command's
// context ends.
func (e env) runNode(cmd *cobra.Command, cfg node.Config, what, page string) error {
	ctx := cmd.Context()
	if err := os.MkdirAll(e.Home, 0o700); err != nil {
		return err
	}
	// The socket first: it tells us whether a daemon runs here before we
	// take ports.
	l, err := localapi.Listen(e.Home)
	if err != nil {
		return err
	}
	var wl net.Listener
	switch page {
	case webOff:
	case "":
		wl, err = web.ListenDefault()
	default:
		wl, err = web.Listen(page)
	}
	if err != nil {
		l.Close()
		return err
	}
	n, err := node.New(ctx, cfg)
	if err != nil {
		l.Close()
		if wl != nil {
			wl.Close()
		}
		return err
	}
	srv := localapi.Serve(n, l)
	var ws *web.Server
	if wl != nil {
		if ws, err = web.Serve(wl, e.Home, srv.Handler()); err != nil {
			return errors.Join(err, srv.Close(), n.Close())
		}
		srv.SetWebPage(ws)
	}
	if info, err := n.Info(); err == nil {
		fmt.Fprintf(e.Stdout, "peercollab %s running as %s (%s)\nAPI: %s\n", what, info.DisplayName, info.PeerID, apitype.SocketPath(e.Home))
		if ws != nil {
			fmt.Fprintf(e.Stdout, "web page: %s (open it with `peercollab web --open`)\n", ws.URL())
		}
		for _, a := range info.Addrs {
			fmt.Fprintf(e.Stdout, "listening on %s\n", a)
		}
	}
	<-ctx.Done()
	fmt.Fprintln(e.Stdout, "shutting down")
	// The API first: it ends the event streams, the page's too.
	err = srv.Close()
	if ws != nil {
		err = errors.Join(err, ws.Close())
	}
	return errors.Join(err, n.Close())
}
