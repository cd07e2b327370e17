package cli

import (
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) logCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Change what the running daemon logs",
	}
	var asJSON bool
	level := &cobra.Command{
		Use:   "level [LEVEL [SUBSYSTEM]] [--json]",
		Short: "Show the daemon's log levels, or set one subsystem's (or every one's) until it stops",
		Long: `Without arguments, list the daemon's logging subsystems and their levels. With
LEVEL (debug, info, warn, error), set the level of SUBSYSTEM, or of every
subsystem without one, at once and until the daemon stops; GOLOG_LOG_LEVEL
sets them at start. Examples:

  peercollab log level debug peercollab/invite
  peercollab log level info`,
		Args:      cobra.MaximumNArgs(2),
		ValidArgs: []string{"debug", "info", "warn", "error"},
		RunE: func(cmd *cobra.Command, args []string) error {
			c := e.client()
			var levels apitype.LogLevels
			var err error
			if len(args) == 0 {
				levels, err = c.LogLevels(cmd.Context())
			} else {
				sub := ""
				if len(args) == 2 {
					sub = args[1]
				}
				levels, err = c.SetLogLevel(cmd.Context(), args[0], sub)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(levels)
			}
			if len(args) > 0 {
				what := "every subsystem"
				if len(args) == 2 {
					what = args[1]
				}
				fmt.Fprintf(e.Stdout, "Log level of %s: %s\n", what, args[0])
				return nil
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SUBSYSTEM\tLEVEL")
			for _, name := range slices.Sorted(func(yield func(string) bool) {
				for k := range levels.Subsystems {
					if !yield(k) {
						return
					}
				}
			}) {
				fmt.Fprintf(tw, "%s\t%s\n", name, levels.Subsystems[name])
			}
			return tw.Flush()
		},
	}
	level.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(level)
	return cmd
}
