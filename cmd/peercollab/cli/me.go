package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) meCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "me",
		Short: "Change who this node says it is: display name and e-mail address",
		Long: `This node's identity is its key; its display name and e-mail address are
what its self-signed certificate says. 'me set' re-issues that certificate
with the same key: the peer ID stays, and so does everyone's trust.`,
	}
	cmd.AddCommand(e.meSetCmd())
	return cmd
}

func (e *Env) meSetCmd() *cobra.Command {
	var name, email string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set --name NAME [--email ADDR] [--json]",
		Short: "Change this node's display name (and e-mail address)",
		Long: `Re-issue this node's certificate with the same key, with a new display name
and, with --email, a new e-mail address (--email "" removes it; without
--email the address stays). People Near Me announces the new name at once;
contacts connected now get the new card at once, the others when they next
connect, and keep the endorsements they hold of this node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var req apitype.MeRequest
			if cmd.Flags().Changed("name") {
				req.DisplayName = &name
			}
			if cmd.Flags().Changed("email") {
				req.Email = &email
			}
			if req.DisplayName == nil && req.Email == nil {
				return fmt.Errorf("give --name, --email or both")
			}
			info, err := e.client().SetMe(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(info)
			}
			fmt.Fprintf(e.Stdout, "You are now %s", info.DisplayName)
			if info.Email != "" {
				fmt.Fprintf(e.Stdout, " <%s>", info.Email)
			}
			fmt.Fprintf(e.Stdout, " (%s)\nfingerprint: %s\n", info.PeerID, info.Fingerprint)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the new display name")
	cmd.Flags().StringVar(&email, "email", "", `the new e-mail address ("" removes it)`)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (as 'peercollab id --json')")
	return cmd
}
