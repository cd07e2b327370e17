package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/localapi"
)

func (e *env) daemonCmd() *cobra.Command {
	var listen []string
	var p contacts.Profile
	cmd := &cobra.Command{
		Use:   "daemon [--listen MULTIADDR]...",
		Short: "Run the node in the foreground (creates the identity on first run)",
		Long: `Run the node until interrupted (SIGINT or SIGTERM). On a data directory with no
identity it creates one first, named by --name (default user@host). The node
serves its local API on a unix socket in the data directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg := node.DefaultConfig(e.home)
			if cmd.Flags().Changed("listen") {
				cfg.ListenAddrs = listen
			}
			if p.DisplayName == "" {
				p.DisplayName = defaultName()
			}
			if err := p.Check(); err != nil {
				return err
			}
			cfg.Profile = p
			// The socket first: it tells us whether a daemon runs here
			// before we take ports.
			if err := os.MkdirAll(e.home, 0o700); err != nil {
				return err
			}
			l, err := localapi.Listen(e.home)
			if err != nil {
				return err
			}
			n, err := node.New(ctx, cfg)
			if err != nil {
				l.Close()
				return err
			}
			srv := localapi.Serve(n, l)
			info, err := n.Info()
			if err == nil {
				fmt.Fprintf(e.stdout, "peercollab daemon running as %s (%s)\nAPI: %s\n", info.DisplayName, info.PeerID, localapi.SocketPath(e.home))
				for _, a := range info.Addrs {
					fmt.Fprintf(e.stdout, "listening on %s\n", a)
				}
			}
			<-ctx.Done()
			fmt.Fprintln(e.stdout, "shutting down")
			return errors.Join(srv.Close(), n.Close())
		},
	}
	cmd.Flags().StringArrayVar(&listen, "listen", nil, fmt.Sprintf("multiaddr to listen on, repeatable (default TCP and QUIC on port %d of every interface)", node.DefaultPort))
	cmd.Flags().StringVar(&p.DisplayName, "name", "", "display name if the identity has to be created (default user@host)")
	cmd.Flags().StringVar(&p.Email, "email", "", "e-mail address if the identity has to be created")
	return cmd
}
