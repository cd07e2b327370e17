package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) appsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "Register applications that invitations can launch; list yours or a peer's",
	}
	var desc, launch, dataFile string
	var autoAccept, autoHost bool
	register := &cobra.Command{
		Use:   "register APPID --desc TEXT [--launch CMD] [--data FILE]",
		Short: "Register an application (at most 64)",
		Long: `Register an application. APPID is 1 to 64 letters, digits, '.', '-', '_' (a
reverse domain name such as org.example.chat, or a GUID). Trusted contacts who
watch you see its ID, description and data (at most 16 KiB); the launch
command, run when you accept an invitation to the application, stays here.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a := apitype.RegisteredApp{ID: args[0], Description: desc, Launch: launch, AutoAccept: autoAccept, AutoHost: autoHost}
			if dataFile != "" {
				data, err := readInput(cmd, dataFile)
				if err != nil {
					return err
				}
				a.Data = data
			}
			if err := e.client().RegisterApp(cmd.Context(), a); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "Registered %s\n", a.ID)
			return nil
		},
	}
	register.Flags().StringVar(&desc, "desc", "", "description, at most 255 characters")
	register.Flags().StringVar(&launch, "launch", "", "command to run (with sh -c) when an invitation to this application is accepted")
	register.Flags().StringVar(&dataFile, "data", "", "file of application data that watchers see (at most 16 KiB)")
	register.Flags().BoolVar(&autoAccept, "auto-accept", false, "accept invitations to this application from trusted contacts without asking")
	register.Flags().BoolVar(&autoHost, "auto-host", false, "accept requests to host a session for this application without asking")
	register.MarkFlagRequired("desc")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list [PEER] [--json]",
		Short: "List your applications, or a peer's (trusted contacts only see them)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := e.client()
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			if len(args) == 0 {
				me, err := c.MyEndpoint(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return e.PrintJSON(me.Applications)
				}
				fmt.Fprintln(tw, "ID\tDESCRIPTION\tLAUNCH")
				for _, a := range me.Applications {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", a.ID, a.Description, a.Launch)
				}
				return tw.Flush()
			}
			pe, err := c.PeerEndpoint(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(orEmpty(pe.Data.Applications))
			}
			if !pe.Data.Full {
				fmt.Fprintln(e.Stdout, "This peer shows its applications to its trusted contacts only.")
				return nil
			}
			fmt.Fprintln(tw, "ID\tDESCRIPTION\tDATA")
			for _, a := range pe.Data.Applications {
				fmt.Fprintf(tw, "%s\t%s\t%d bytes\n", a.ID, a.Description, len(a.Data))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	remove := &cobra.Command{
		Use:   "remove APPID",
		Short: "Unregister an application",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.client().RemoveApp(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "Removed %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(register, list, remove)
	return cmd
}

// orEmpty makes a nil slice print as [] in JSON.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
