package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) presenceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "presence",
		Short: "Set your presence, or show yours or a peer's",
	}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show [PEER] [--json]",
		Short: "Show your presence, or a peer's (from its watch, or fetched now)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := e.client()
			if len(args) == 0 {
				me, err := c.MyEndpoint(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return e.PrintJSON(me.Presence)
				}
				fmt.Fprintln(e.Stdout, presenceString(string(me.Presence.Status), me.Presence.Text))
				return nil
			}
			pe, err := c.PeerEndpoint(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(pe.Data.Presence)
			}
			// The peer by its name here; the endpoint name is its computer's.
			name := e.peerNames(cmd.Context())(pe.Peer)
			if pe.Data.Name != "" && pe.Data.Name != name {
				name += " (on " + pe.Data.Name + ")"
			}
			fmt.Fprintf(e.Stdout, "%s: %s\n", name, presenceString(string(pe.Data.Presence.Status), pe.Data.Presence.Text))
			return nil
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	set := &cobra.Command{
		Use:   "set STATUS [TEXT]",
		Short: "Set your presence: online, away, busy, be-right-back, idle, on-the-phone, out-to-lunch",
		Long: `Set your presence and an optional text of at most 255 characters. The status is
one of online, away, busy, be-right-back, idle, on-the-phone, out-to-lunch;
to appear offline, sign out.`,
		Args:      cobra.RangeArgs(1, 2),
		ValidArgs: []string{"online", "away", "busy", "be-right-back", "idle", "on-the-phone", "out-to-lunch"},
		RunE: func(cmd *cobra.Command, args []string) error {
			// The daemon checks the status and takes it in any case and
			// without separators ("OnThePhone").
			p := apitype.Presence{Status: apitype.PresenceStatus(args[0])}
			if len(args) == 2 {
				p.Text = args[1]
			}
			me, err := e.client().SetPresence(cmd.Context(), p)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "Presence: %s\n", presenceString(string(me.Presence.Status), me.Presence.Text))
			return nil
		},
	}
	cmd.AddCommand(show, set)
	return cmd
}

func (e *Env) nameCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "name [ENDPOINT-NAME] [--json]",
		Short: "Show or set this endpoint's name (default: the host name)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := e.client()
			if len(args) == 0 {
				me, err := c.MyEndpoint(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return e.PrintJSON(apitype.NameRequest{Name: me.Name})
				}
				fmt.Fprintln(e.Stdout, me.Name)
				return nil
			}
			me, err := c.SetName(cmd.Context(), strings.TrimSpace(args[0]))
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(apitype.NameRequest{Name: me.Name})
			}
			fmt.Fprintf(e.Stdout, "Endpoint name: %s\n", me.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"endpoint_name": NAME}`)
	return cmd
}
