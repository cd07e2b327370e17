package cli

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) contactsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contacts",
		Short: "Manage contacts: add, list, show, update, remove, export, endorse, verify",
		Long: `Contacts are peers whose certificates you hold. Add one from a card file
('peercollab card -o me.contact' on their side), or endorse a peer's card so
that your contacts can trust it too.

PEER is a peer ID, a contact's nickname, or a unique prefix of either.`,
	}
	cmd.AddCommand(e.contactsAddCmd(), e.contactsListCmd(), e.contactsShowCmd(), e.contactsUpdateCmd(),
		e.contactsRemoveCmd(), e.contactsExportCmd(), e.contactsEndorseCmd(), e.contactsVerifyCmd(), e.contactsLocateCmd())
	return cmd
}

func (e *Env) contactsAddCmd() *cobra.Command {
	var nickname string
	var watch, block, replace, asJSON bool
	var nearPeer string
	cmd := &cobra.Command{
		Use:   "add FILE|-|--near PEER [--nickname N] [--watch] [--block] [--replace]",
		Short: "Add a contact from a card file or from the people near (or replace the card of one)",
		Long: `Add a contact from a card file ('-' for standard input), or, with --near, from
the card a person near introduced themselves with (see 'peercollab near').
Adding a peer that is a contact already changes nothing and fails, saying so
(and naming any endorsement the stored card carries that the new one lacks),
unless --replace is given: then the card is replaced, the contact's settings
are kept, and the endorsements dropped are named.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if nearPeer != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var nick *string
			var w *bool
			var perm *apitype.WatcherPermission
			if cmd.Flags().Changed("nickname") {
				nick = &nickname
			}
			if cmd.Flags().Changed("watch") {
				w = &watch
			}
			if block {
				p := apitype.WatcherBlocked
				perm = &p
			}
			var res apitype.AddContactResponse
			var err error
			if nearPeer != "" {
				res, err = e.client().AddNear(cmd.Context(), nearPeer, apitype.AddNearRequest{Nickname: nick, Watch: w, WatcherPermission: perm, Replace: replace})
			} else {
				var data []byte
				if data, err = readInput(cmd, args[0]); err != nil {
					return err
				}
				res, err = e.client().AddContact(cmd.Context(), apitype.AddContactRequest{Card: string(data), Nickname: nick, Watch: w, WatcherPermission: perm, Replace: replace})
			}
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(res)
			}
			verb := "Added"
			switch {
			case res.DeviceAdded:
				verb = "Added a device of"
			case !res.Created:
				verb = "Replaced the card of"
			}
			fmt.Fprintf(e.Stdout, "%s %s (%s)\n", verb, res.Contact.Nickname, res.Contact.PeerID)
			for _, d := range res.DroppedEndorsements {
				fmt.Fprintf(e.Stdout, "dropped:     the endorsement by %s (%s), which the replaced card carried\n", d.DisplayName, d.PeerID)
			}
			if !res.Card.Trust.Trusted {
				// Adding it is what makes it trusted; say what the card
				// itself proved, and what the user should check.
				// The peer ID, not the fingerprint: an endorsed card's
				// certificate (and so its fingerprint) is the endorser's
				// issue, while the peer ID is the key, the same in every
				// card of the peer and in what its `peercollab id` shows.
				res.Card.Trust.Reason = "no contact of yours endorsed this card; before you rely on it, check its peer ID with " + res.Contact.DisplayName + ", whose `peercollab id` shows it"
			}
			printCard(e.Stdout, res.Card)
			return nil
		},
	}
	cmd.Flags().StringVar(&nickname, "nickname", "", "your name for the contact (default its display name)")
	cmd.Flags().BoolVar(&watch, "watch", false, "subscribe to the contact's presence and endpoint data")
	cmd.Flags().BoolVar(&block, "block", false, "do not let the contact watch your presence")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace the card of a peer that is a contact already")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&nearPeer, "near", "", "add the person near named PEER (name, peer ID or unique prefix)")
	return cmd
}

// printCard describes a card and the trust in it.
func printCard(w io.Writer, c apitype.CardView) {
	fmt.Fprintf(w, "name:        %s\n", c.DisplayName)
	if c.Email != "" {
		fmt.Fprintf(w, "e-mail:      %s\n", c.Email)
	}
	fmt.Fprintf(w, "peer ID:     %s\nfingerprint: %s\n", c.PeerID, c.Fingerprint)
	for i, l := range c.Chain[min(1, len(c.Chain)):] {
		fmt.Fprintf(w, "endorsed by: %s (%s)%s\n", l.DisplayName, l.PeerID, map[bool]string{true: ", who endorsed the one above"}[i > 0])
	}
	for _, a := range c.Addrs {
		fmt.Fprintf(w, "address:     %s\n", a)
	}
	switch {
	case c.Trust.Trusted && c.Trust.Depth == 0:
		fmt.Fprintf(w, "trust:       trusted (a contact)\n")
	case c.Trust.Trusted:
		fmt.Fprintf(w, "trust:       trusted, endorsed by your contact %s\n", c.Trust.ViaName)
	default:
		fmt.Fprintf(w, "trust:       not trusted: %s\n", c.Trust.Reason)
	}
}

func (e *Env) contactsListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List contacts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := e.client().Contacts(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(e.Stdout, "No contacts yet; add one with `peercollab contacts add FILE`.")
				return nil
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NICKNAME\tNAME\tPEER ID\tWATCH\tMAY WATCH ME")
			for _, c := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Nickname, c.DisplayName, c.PeerID, yesNo(c.Watch), yesNo(c.WatcherPermission == apitype.WatcherAllowed))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (e *Env) contactsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show PEER [--json]",
		Short: "Show a contact",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := e.client().Contact(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(d)
			}
			c := d.Contact
			fmt.Fprintf(e.Stdout, "nickname:    %s\n", c.Nickname)
			if d.Card.Chain == nil {
				fmt.Fprintf(e.Stdout, "peer ID:     %s\ncard:        %s\n", c.PeerID, d.Card.Trust.Reason)
			} else {
				d.Card.Addrs = c.Addrs // the addresses known now, which may be newer than the card's
				printCard(e.Stdout, d.Card)
			}
			fmt.Fprintf(e.Stdout, "watch:       %s\nmay watch me: %s\nadded:       %s\n", yesNo(c.Watch), yesNo(c.WatcherPermission == apitype.WatcherAllowed), c.Added.Local().Format("2006-01-02 15:04"))
			if !c.LastSeen.IsZero() {
				fmt.Fprintf(e.Stdout, "last seen:   %s\n", c.LastSeen.Local().Format("2006-01-02 15:04:05"))
			}
			if len(d.Endpoints) > 1 {
				fmt.Fprintf(e.Stdout, "presence:    %s\nendpoints:\n", presenceString(string(d.Presence.Status), d.Presence.Text))
				for _, ep := range d.Endpoints {
					name := ep.Device
					if ep.First {
						name = c.DisplayName + " (first device)"
					}
					state := presenceString(string(ep.Presence.Status), ep.Presence.Text)
					if !ep.Revoked.IsZero() {
						state = "revoked " + ep.Revoked.Local().Format("2006-01-02 15:04")
					} else if ep.Connected {
						state += ", connected"
					}
					fmt.Fprintf(e.Stdout, "  %-20s %s  %s\n", name, ep.PeerID, state)
					for _, a := range ep.Addrs {
						fmt.Fprintf(e.Stdout, "  %-20s   %s\n", "", a)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *Env) contactsUpdateCmd() *cobra.Command {
	var nickname string
	var watch, noWatch, allow, block, asJSON bool
	cmd := &cobra.Command{
		Use:   "update PEER [--nickname N] [--watch|--no-watch] [--allow|--block]",
		Short: "Change a contact's nickname, watch flag or permission to watch you",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req apitype.UpdateContactRequest
			if cmd.Flags().Changed("nickname") {
				req.Nickname = &nickname
			}
			if watch || noWatch {
				req.Watch = &watch
			}
			if allow || block {
				p := apitype.WatcherAllowed
				if block {
					p = apitype.WatcherBlocked
				}
				req.WatcherPermission = &p
			}
			if req == (apitype.UpdateContactRequest{}) {
				return errors.New("nothing to change: give --nickname, --watch, --no-watch, --allow or --block")
			}
			c, err := e.client().UpdateContact(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(c)
			}
			fmt.Fprintf(e.Stdout, "Updated %s (%s): watch %s, may watch me %s\n", c.Nickname, c.PeerID, yesNo(c.Watch), yesNo(c.WatcherPermission == apitype.WatcherAllowed))
			return nil
		},
	}
	cmd.Flags().StringVar(&nickname, "nickname", "", "new nickname")
	cmd.Flags().BoolVar(&watch, "watch", false, "subscribe to the contact's presence and endpoint data")
	cmd.Flags().BoolVar(&noWatch, "no-watch", false, "stop watching the contact")
	cmd.Flags().BoolVar(&allow, "allow", false, "let the contact watch your presence and endpoint data")
	cmd.Flags().BoolVar(&block, "block", false, "stop the contact from watching you")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagsMutuallyExclusive("watch", "no-watch")
	cmd.MarkFlagsMutuallyExclusive("allow", "block")
	return cmd
}

func (e *Env) contactsRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove PEER",
		Short: "Remove a contact",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := e.client()
			d, err := c.Contact(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := c.RemoveContact(cmd.Context(), d.Contact.PeerID.String()); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "Removed %s (%s)\n", d.Contact.Nickname, d.Contact.PeerID)
			return nil
		},
	}
}

func (e *Env) contactsExportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export PEER [-o FILE]",
		Short: "Export a contact's card as you hold it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client().ExportContact(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return e.writeOutput(out, []byte(c.Card))
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the card to FILE instead of standard output")
	return cmd
}

func (e *Env) contactsEndorseCmd() *cobra.Command {
	var out, validity string
	cmd := &cobra.Command{
		Use:   "endorse FILE|- [-o FILE] [--validity DURATION]",
		Short: "Endorse a peer's card: sign its key with yours",
		Long: `Issue a certificate for the peer of a card, signed with your key, and write the
endorsed card. Your contacts will trust the endorsed card because they trust
you. Give it back to the peer, or to your contacts directly.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := e.client().Endorse(cmd.Context(), apitype.EndorseRequest{Card: string(data), Validity: validity})
			if err != nil {
				return err
			}
			if err := e.writeOutput(out, []byte(c.Card)); err != nil {
				return err
			}
			if out != "" && out != "-" {
				fmt.Fprintf(e.Stderr, "Wrote the endorsed card of %s to %s\n", c.PeerID, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the endorsed card to FILE instead of standard output")
	cmd.Flags().StringVar(&validity, "validity", "", "how long the endorsement is valid, e.g. 8760h (default two years, never beyond your own certificate)")
	return cmd
}

func (e *Env) contactsVerifyCmd() *cobra.Command {
	var asJSON, requireTrusted bool
	cmd := &cobra.Command{
		Use:   "verify FILE|- [--json] [--require-trusted]",
		Short: "Check a card and whether your contacts vouch for it, without adding it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			v, err := e.client().CheckCard(cmd.Context(), data)
			if err != nil {
				return err
			}
			if asJSON {
				err = e.PrintJSON(v)
			} else {
				printCard(e.Stdout, v)
			}
			if err == nil && requireTrusted && !v.Trust.Trusted {
				return errors.New(v.Trust.Reason)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&requireTrusted, "require-trusted", false, "exit non-zero unless the card is trusted")
	return cmd
}

func (e *Env) contactsLocateCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "locate PEER [--json]",
		Short: "Find a peer's current addresses through the DHT (and keep them in its contact entry)",
		Long: `Look up the address record a peer signed into the DHT (while it is signed in
to the Internet scope), for a contact whose card has gone stale. Nodes do
this by themselves when they cannot reach a contact; this command shows it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := e.client().Locate(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(res)
			}
			for _, a := range res.Addrs {
				fmt.Fprintln(e.Stdout, a)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
