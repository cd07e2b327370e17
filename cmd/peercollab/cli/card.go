package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (e *Env) cardCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "card [-o FILE]",
		Short: "Export my contact card (certificate and current addresses)",
		Long: `Export this node's contact card: its certificate chain and a signed record of
its current addresses, as PEM. Give the file to the people who should add you
as a contact ('peercollab contacts add FILE').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client().Card(cmd.Context())
			if err != nil {
				return err
			}
			if err := e.writeOutput(out, []byte(c.Card)); err != nil {
				return err
			}
			if out != "" && out != "-" {
				fmt.Fprintf(e.Stderr, "Wrote the card of %s to %s\n", c.PeerID, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the card to FILE instead of standard output")
	return cmd
}
