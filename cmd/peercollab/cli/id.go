package cli

import (
	"fmt"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/spf13/cobra"
)

func (e *Env) idCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "id [--json]",
		Short: "Show this node's peer ID, name, addresses and certificate fingerprint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := e.client().ID(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(info)
			}
			fmt.Fprintf(e.Stdout, "peer ID:     %s\nname:        %s\n", info.PeerID, info.DisplayName)
			if info.Email != "" {
				fmt.Fprintf(e.Stdout, "e-mail:      %s\n", info.Email)
			}
			fmt.Fprintf(e.Stdout, "fingerprint: %s\nreachable:   %s", info.Fingerprint, info.Reachability)
			if info.HolePunching {
				fmt.Fprint(e.Stdout, " (hole punching ready)")
			}
			fmt.Fprintf(e.Stdout, "\nconnected:   %d peers (%d connections)\n", info.Peers, info.Connections)
			for _, group := range []struct {
				name  string
				addrs []ma.Multiaddr
			}{{"public", info.PublicAddrs}, {"private", info.PrivateAddrs}, {"relayed", info.RelayAddrs}} {
				for _, a := range group.addrs {
					fmt.Fprintf(e.Stdout, "%-12s %s\n", group.name+":", a)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
