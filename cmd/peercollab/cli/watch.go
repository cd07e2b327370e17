package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func (e *Env) watchCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "watch [PEER] [--json]",
		Short: "Subscribe to a peer's presence, applications and objects; without PEER, list watches",
		Long: `Subscribe to a peer's endpoint data: its name and presence (people near may
see those), applications and objects (its trusted contacts may). Changes
arrive as events ('peercollab events'). Watching a contact is remembered
(its watch flag); watching someone near lasts until the daemon stops.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := e.client()
			if len(args) == 0 {
				list, err := c.Watching(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return e.PrintJSON(orEmpty(list))
				}
				if len(list) == 0 {
					fmt.Fprintln(e.Stdout, "Watching nobody.")
					return nil
				}
				names := e.peerNames(cmd.Context())
				tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tENDPOINT\tPRESENCE\tSTATE\tPEER ID")
				for _, w := range list {
					state := string(w.State)
					if w.Error != "" {
						state += ": " + w.Error
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", names(w.Peer), w.Data.Name, presenceString(string(w.Data.Presence.Status), w.Data.Presence.Text), state, w.Peer)
				}
				return tw.Flush()
			}
			w, err := c.Watch(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(w)
			}
			fmt.Fprintf(e.Stdout, "Watching %s (%s)\n", e.peerNames(cmd.Context())(w.Peer), w.Peer)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *Env) unwatchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unwatch PEER",
		Short: "Stop watching a peer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.client().Unwatch(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "No longer watching %s\n", args[0])
			return nil
		},
	}
}

func (e *Env) forgetCmd() *cobra.Command {
	var unwatch, asJSON bool
	cmd := &cobra.Command{
		Use:   "forget PEER [--unwatch] [--json]",
		Short: "Drop what this node keeps of a peer's endpoint data",
		Long: `Drop the endpoint data of PEER that this node keeps in memory: what a
refresh fetched ('presence show PEER', 'apps list PEER', ...) or a watch that
ended left (Windows' DeleteEndpointData). A watched peer's data is its
watch's: --unwatch stops the watch first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := e.client()
			if unwatch {
				if err := c.Unwatch(cmd.Context(), args[0]); err != nil {
					return err
				}
			}
			if err := c.ForgetEndpoint(cmd.Context(), args[0]); err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(struct {
					Peer      string `json:"peer"`
					Forgotten bool   `json:"forgotten"`
				}{args[0], true})
			}
			fmt.Fprintf(e.Stdout, "Forgot the endpoint data of %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&unwatch, "unwatch", false, "stop watching the peer first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
