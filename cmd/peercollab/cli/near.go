package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) nearCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "near [--json]",
		Short: "List the people near (peercollab nodes on your subnet)",
		Long: `List the people near: peercollab nodes signed in to nearme on your subnet, with
their names and presence. Add one as a contact with 'peercollab contacts add
--near NAME'. A node that signs out or whose daemon stops leaves the list at
once; one that vanishes silently (killed, cable cut), within about 8 seconds
(longer on a crowded subnet, where nodes announce themselves less often).
Nodes announce themselves with Multicast DNS; no connection is held to anyone
listed, and anyone on the subnet can read your name and presence.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			people, err := e.client().Near(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(people)
			}
			if len(people) == 0 {
				fmt.Fprintln(e.Stdout, "Nobody near yet.")
				return nil
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tENDPOINT\tPRESENCE\tCONTACT\tPEER ID")
			// A contact's person with several devices near is one entry,
			// its devices below it ("Bob", "Bob/laptop").
			var order []apitype.PersonNear
			done := map[int]bool{}
			for i, p := range people {
				if done[i] {
					continue
				}
				order = append(order, p)
				if p.PersonID == "" {
					continue
				}
				for j := i + 1; j < len(people); j++ {
					if people[j].PersonID == p.PersonID {
						order, done[j] = append(order, people[j]), true
					}
				}
			}
			for _, p := range order {
				name := p.DisplayName
				if p.Device != "" {
					name += "/" + p.Device
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, p.EndpointName, presenceString(string(p.Presence.Status), p.Presence.Text), yesNo(p.Contact), p.PeerID)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func presenceString(status, text string) string {
	if text == "" {
		return status
	}
	return status + " (" + text + ")"
}
