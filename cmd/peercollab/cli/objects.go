package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) objectsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "objects",
		Short: "Publish objects (up to 128 of 16 KiB) to your trusted watchers; read a peer's",
	}
	set := &cobra.Command{
		Use:   "set OBJID FILE|-",
		Short: "Publish or replace an object (needs a sign-in; objects end with it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(cmd, args[1])
			if err != nil {
				return err
			}
			if err := e.client().SetObject(cmd.Context(), args[0], data); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "Published %s (%d bytes)\n", args[0], len(data))
			return nil
		},
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [PEER] [--json]",
		Short: "List your objects, or a peer's (trusted contacts only see them)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			objs, full, err := e.objects(cmd, args)
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(objs)
			}
			if !full {
				fmt.Fprintln(e.Stdout, "This peer shows its objects to its trusted contacts only.")
				return nil
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSIZE")
			for _, o := range objs {
				fmt.Fprintf(tw, "%s\t%d bytes\n", o.ID, len(o.Data))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var out string
	get := &cobra.Command{
		Use:   "get PEER OBJID [-o FILE]",
		Short: "Write a peer's object to standard output or a file",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			objs, full, err := e.objects(cmd, args[:1])
			if err != nil {
				return err
			}
			for _, o := range objs {
				if o.ID == args[1] {
					return e.writeOutput(out, o.Data)
				}
			}
			if !full {
				return fmt.Errorf("%s shows its objects to its trusted contacts only", args[0])
			}
			return fmt.Errorf("%s publishes no object %q; see `peercollab objects list %s`", args[0], args[1], args[0])
		},
	}
	get.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of standard output")
	remove := &cobra.Command{
		Use:   "remove OBJID",
		Short: "Unpublish an object",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.client().RemoveObject(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "Removed %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(set, list, get, remove)
	return cmd
}

// objects returns this node's objects (no args) or a peer's, and whether
// they are all there is (a peer that does not trust us shows none).
func (e *Env) objects(cmd *cobra.Command, args []string) ([]apitype.Object, bool, error) {
	c := e.client()
	if len(args) == 0 {
		me, err := c.MyEndpoint(cmd.Context())
		return orEmpty(me.Objects), true, err
	}
	pe, err := c.PeerEndpoint(cmd.Context(), args[0])
	return orEmpty(pe.Data.Objects), pe.Data.Full, err
}
