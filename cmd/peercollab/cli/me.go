package cli

import (
	"fmt"
	"slices"

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
	cmd.AddCommand(e.meSetCmd(), e.mePictureCmd())
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

func (e *Env) mePictureCmd() *cobra.Command {
	var remove, asJSON bool
	var of, out string
	cmd := &cobra.Command{
		Use:   "picture FILE|- | --remove | --of PEER [-o FILE]",
		Short: "Publish your picture to your trusted watchers, remove it, or read a peer's",
		Long: `Your picture is the predefined object ` + apitype.UserPictureID + `
(Windows' user picture object): an image of at most 16 KiB, which your
trusted contacts who watch you receive like any object, and which ends, as
objects do, when you sign out. --of PEER writes PEER's picture to standard
output or to the file of -o.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if remove || of != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c := e.client()
			switch {
			case of != "":
				ep, err := c.PeerEndpoint(cmd.Context(), of)
				if err != nil {
					return err
				}
				i := slices.IndexFunc(ep.Data.Objects, func(o apitype.Object) bool { return o.ID == apitype.UserPictureID })
				if i < 0 {
					if !ep.Data.Full {
						return fmt.Errorf("%s shows its picture to its trusted contacts only", of)
					}
					return fmt.Errorf("%s publishes no picture", of)
				}
				return e.writeOutput(out, ep.Data.Objects[i].Data)
			case remove:
				if err := c.RemoveObject(cmd.Context(), apitype.UserPictureID); err != nil {
					return err
				}
				if asJSON {
					return e.PrintJSON(pictureResult{ID: apitype.UserPictureID})
				}
				fmt.Fprintln(e.Stdout, "Removed your picture")
				return nil
			}
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			if err := c.SetObject(cmd.Context(), apitype.UserPictureID, data); err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(pictureResult{ID: apitype.UserPictureID, Bytes: len(data), Published: true})
			}
			fmt.Fprintf(e.Stdout, "Published your picture (%d bytes)\n", len(data))
			return nil
		},
	}
	cmd.Flags().BoolVar(&remove, "remove", false, "remove your picture")
	cmd.Flags().StringVar(&of, "of", "", "read the picture of PEER")
	cmd.Flags().StringVarP(&out, "output", "o", "", "with --of: write to FILE instead of standard output")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// pictureResult is what 'me picture --json' prints.
type pictureResult struct {
	ID        string `json:"id"`
	Bytes     int    `json:"bytes,omitempty"`
	Published bool   `json:"published"`
}
