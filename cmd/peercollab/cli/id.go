package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (e *env) idCmd() *cobra.Command {
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
				return e.printJSON(info)
			}
			fmt.Fprintf(e.stdout, "peer ID:     %s\nname:        %s\n", info.PeerID, info.DisplayName)
			if info.Email != "" {
				fmt.Fprintf(e.stdout, "e-mail:      %s\n", info.Email)
			}
			fmt.Fprintf(e.stdout, "fingerprint: %s\n", info.Fingerprint)
			for _, a := range info.Addrs {
				fmt.Fprintf(e.stdout, "address:     %s\n", a)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
