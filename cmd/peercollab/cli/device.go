package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) deviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "A person with several devices: link, approve, join, list, revoke",
		Long: `A person may use peercollab on several devices; contacts then know them as
one person. Each device keeps its own key. To add a device:

  on the new device:       peercollab device link -o REQUEST
  on a device you have:    peercollab device approve REQUEST -o GRANT
  on the new device:       peercollab device join GRANT

The approving device signs a grant: a certificate for the new device's key, as
the same person. The person is named by the key of its first device, which
cannot be revoked. 'device revoke' signs a revocation: the revoked device, and
the devices it approved, are no longer the person's.`,
	}
	cmd.AddCommand(e.deviceLinkCmd(), e.deviceApproveCmd(), e.deviceJoinCmd(), e.deviceListCmd(), e.deviceRevokeCmd())
	return cmd
}

func (e *Env) deviceLinkCmd() *cobra.Command {
	var out, name string
	cmd := &cobra.Command{
		Use:   "link [--name NAME] [-o REQUEST]",
		Short: "Ask to join a person: write this device's link request",
		Long: `Write this device's link request: its certificate, the name it asks to go by
(default: the host name) and a random nonce, signed with its key. Approve it
on a device the person already has ('peercollab device approve REQUEST'),
within 24 hours. A new request replaces the earlier one. A device of a person
may ask again, to be approved again by that person (after a revocation, or
before its grant expires); it cannot join another person.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := e.client().LinkDevice(cmd.Context(), apitype.DeviceLinkRequest{Name: name})
			if err != nil {
				return err
			}
			if err := e.writeOutput(out, []byte(r.Request)); err != nil {
				return err
			}
			if out != "" && out != "-" {
				fmt.Fprintf(e.Stderr, "Wrote the link request of this device to %s; approve it on a device you have with `peercollab device approve %s -o GRANT`, then run `peercollab device join GRANT` here.\n", out, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the request to FILE instead of standard output")
	cmd.Flags().StringVar(&name, "name", "", "the name this device goes by (default: the host name)")
	return cmd
}

func (e *Env) deviceApproveCmd() *cobra.Command {
	var out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "approve REQUEST|- [-o GRANT] [--json]",
		Short: "Approve a new device's link request as a device of this person",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			r, err := e.client().ApproveDevice(cmd.Context(), data)
			if err != nil {
				return err
			}
			if asJSON {
				if out != "" && out != "-" {
					if err := e.writeOutput(out, []byte(r.Grant)); err != nil {
						return err
					}
				}
				return e.PrintJSON(r)
			}
			if err := e.writeOutput(out, []byte(r.Grant)); err != nil {
				return err
			}
			if out != "" && out != "-" {
				fmt.Fprintf(e.Stderr, "Approved %q (%s); on it, run `peercollab device join %s`.\n", r.Device.Name, r.Device.Device, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the grant to FILE instead of standard output")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the grant in it)")
	return cmd
}

func (e *Env) deviceJoinCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "join GRANT|- [--json]",
		Short: "Join the person whose device approved this device's link request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			ds, err := e.client().JoinDevice(cmd.Context(), data)
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(ds)
			}
			fmt.Fprintf(e.Stdout, "This device is now a device of %s; its card names the person.\n", personLabel(ds))
			return e.printDevices(ds)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *Env) deviceListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list [--json]",
		Aliases: []string{"ls"},
		Short:   "List the devices of this node's person",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ds, err := e.client().Devices(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(ds)
			}
			if ds.PendingLink {
				fmt.Fprintln(e.Stdout, "This device's link request waits for a grant (`peercollab device join GRANT`).")
			}
			return e.printDevices(ds)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *Env) deviceRevokeCmd() *cobra.Command {
	var out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke DEVICE [-o FILE] [--json]",
		Short: "Revoke a device of this person (by name, device ID or a unique prefix)",
		Long: `Sign a revocation of a device of this person: it, and the devices it approved,
are no longer the person's. The first device cannot be revoked. -o writes the
signed revocation to FILE too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.client().RevokeDevice(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if out != "" {
				if err := e.writeOutput(out, []byte(r.Revocation)); err != nil {
					return err
				}
			}
			if asJSON {
				return e.PrintJSON(r)
			}
			fmt.Fprintf(e.Stdout, "Revoked %s (%s) at %s.\n", deviceLabel(r.Device), r.Device.Device, r.Device.Revoked.Local().Format(time.DateTime))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the signed revocation to FILE")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *Env) printDevices(ds apitype.Devices) error {
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDEVICE\tAPPROVED BY\tSTATE")
	names := map[string]string{}
	for _, d := range ds.Devices {
		names[d.Device.String()] = deviceLabel(d)
	}
	for _, d := range ds.Devices {
		by := "-"
		if d.ApprovedBy != "" {
			by = names[d.ApprovedBy.String()]
			if by == "" {
				by = d.ApprovedBy.String()
			}
		}
		state := "active"
		switch {
		case !d.Revoked.IsZero():
			state = "revoked " + d.Revoked.Local().Format(time.DateTime)
		case d.First:
			state = "first device"
		}
		if d.Self {
			state += ", this device"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", deviceLabel(d), d.Device, by, state)
	}
	return tw.Flush()
}

func deviceLabel(d apitype.Device) string {
	if d.Name == "" {
		return "-"
	}
	return d.Name
}

func personLabel(ds apitype.Devices) string {
	for _, d := range ds.Devices {
		if d.First && d.Name != "" {
			return fmt.Sprintf("%s (%s)", d.Name, ds.Person)
		}
	}
	return ds.Person.String()
}
