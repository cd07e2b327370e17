package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
)

func (e *Env) inviteCmd() *cobra.Command {
	var req apitype.InviteRequest
	var dataFile string
	var timeout time.Duration
	var wait, asJSON bool
	cmd := &cobra.Command{
		Use:   "invite PEER... --app APPID [--message M] [--data FILE] [--timeout D] [--wait]",
		Short: "Invite contacts or people near to an application",
		Long: `Invite one or more peers (contacts, people near, peer IDs or /p2p/ multiaddrs)
to an application registered on their side. The command returns at once with
the invitations and their tally; with --wait it shows the answers as they come
and exits when every invitation is answered, expired or cancelled (non-zero if
any was not accepted). Invitations wait at most --timeout (default 5m) for an
answer; the message is at most 255 characters, the data at most 16 KiB.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			req.Peers = args
			if timeout > 0 {
				req.Timeout = timeout.String()
			}
			if dataFile != "" {
				data, err := readInput(cmd, dataFile)
				if err != nil {
					return err
				}
				req.Data = data
			}
			c := e.client()
			var stream *client.EventStream
			if wait { // subscribe first, so no answer slips by
				s, err := c.Events(ctx)
				if err != nil {
					return err
				}
				defer s.Close()
				defer context.AfterFunc(ctx, func() { s.Close() })()
				stream = s
			}
			list, err := c.Invite(ctx, req)
			if err != nil {
				return err
			}
			if !wait {
				if asJSON {
					return e.PrintJSON(list)
				}
				printInvitations(e.Stdout, list.Invitations)
				return nil
			}
			final, err := e.waitBatch(ctx, stream, list)
			if err != nil {
				return err
			}
			if asJSON {
				if err := e.PrintJSON(final); err != nil {
					return err
				}
			} else {
				printInvitations(e.Stdout, final.Invitations)
			}
			if final.Tally.Accepted != final.Tally.Total {
				return fmt.Errorf("%d of %d invitations accepted", final.Tally.Accepted, final.Tally.Total)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&req.AppID, "app", "", "application ID, registered on the invitees' side")
	cmd.Flags().StringVarP(&req.Message, "message", "m", "", "message for the invitees, at most 255 characters")
	cmd.Flags().StringVar(&dataFile, "data", "", "file of data for the application, at most 16 KiB")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long the invitations wait for an answer (default 5m)")
	cmd.Flags().BoolVar(&wait, "wait", false, "show the answers as they come and wait for all")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("app")
	return cmd
}

// waitBatch follows the event stream until every invitation of the batch
// is answered, printing the tally to standard error as it changes.
func (e *Env) waitBatch(ctx context.Context, s *client.EventStream, list apitype.InvitationList) (apitype.InvitationList, error) {
	recs := map[string]apitype.Invitation{}
	order := make([]string, 0, len(list.Invitations))
	for _, r := range list.Invitations {
		recs[r.ID] = r
		order = append(order, r.ID)
	}
	current := func() apitype.InvitationList {
		out := apitype.InvitationList{Batch: list.Batch}
		for _, id := range order {
			out.Invitations = append(out.Invitations, recs[id])
		}
		out.Tally = apitype.TallyOf(out.Invitations)
		return out
	}
	// Answers may have come before the stream was read: start from now.
	if now, err := e.client().Invitations(ctx, apitype.Sent, list.Batch, "", false); err == nil {
		for _, r := range now.Invitations {
			recs[r.ID] = r
		}
	}
	last := ""
	for {
		cur := current()
		if line := tallyLine(cur.Tally); line != last {
			fmt.Fprintln(e.Stderr, line)
			last = line
		}
		if cur.Tally.Done() {
			return cur, nil
		}
		ev, err := s.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return cur, errors.New("interrupted; the invitations go on (see `peercollab invitations`)")
			}
			if errors.Is(err, io.EOF) {
				return cur, errors.New("the daemon ended the event stream")
			}
			return cur, err
		}
		if ev.Type != apitype.EventInvitation {
			continue
		}
		var r apitype.Invitation
		if json.Unmarshal(ev.Data, &r) == nil && r.Batch == list.Batch && r.Direction == apitype.Sent {
			recs[r.ID] = r
		}
	}
}

func tallyLine(t apitype.Tally) string {
	parts := []string{fmt.Sprintf("%d accepted", t.Accepted), fmt.Sprintf("%d declined", t.Declined), fmt.Sprintf("%d no answer yet", t.NoAnswer)}
	for _, x := range []struct {
		n    int
		name string
	}{{t.Expired, "expired"}, {t.Cancelled, "cancelled"}, {t.Error, "failed"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.name))
		}
	}
	return fmt.Sprintf("invitations: %s (of %d)", strings.Join(parts, ", "), t.Total)
}

func printInvitations(w io.Writer, recs []apitype.Invitation) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "No invitations.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDIRECTION\tPEER\tAPPLICATION\tSTATE\tTRUSTED\tEXPIRES\tMESSAGE")
	for _, r := range recs {
		st := string(r.State)
		switch {
		case r.Reason != "":
			st += " (" + r.Reason + ")"
		case r.Direction == apitype.Sent && r.State == apitype.InvitationPending:
			// Not delivered: the invitee is offline or unreachable, and
			// the daemon keeps trying until the invitation expires.
			st = "not delivered yet (retrying)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID[:12], r.Direction, r.PeerName, r.AppID, st, yesNo(r.Trusted),
			r.Expires.Local().Format("15:04:05"), r.Message)
	}
	tw.Flush()
}

func (e *Env) invitationsCmd() *cobra.Command {
	var asJSON, all bool
	var direction string
	cmd := &cobra.Command{
		Use:   "invitations [--json] [--all] | accept ID | decline ID | cancel ID | show ID | policy [anyone|contacts|nobody]",
		Short: "List invitations; accept, decline, cancel them; set whose you take",
		Long: `List the invitations not answered yet (--all: every one), sent and received.
ID is an invitation ID or a unique prefix of one (4 characters at least).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := e.client().Invitations(cmd.Context(), apitype.Direction(direction), "", "", !all)
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(list)
			}
			printInvitations(e.Stdout, list.Invitations)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&all, "all", false, "list answered invitations too")
	cmd.Flags().StringVar(&direction, "direction", "", "only sent or received ones")
	for _, verb := range []struct{ name, short string }{
		{"accept", "Accept a received invitation (runs the application's launch command)"},
		{"decline", "Decline a received invitation"},
		{"cancel", "Cancel a sent invitation that has no answer yet"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   verb.name + " ID",
			Short: verb.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, err := e.client().AnswerInvitation(cmd.Context(), args[0], verb.name)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "Invitation %s to %s: %s\n", r.ID, r.AppID, r.State)
				return nil
			},
		})
	}
	var showJSON, policyJSON bool
	show := &cobra.Command{
		Use:   "show ID [--json]",
		Short: "Show an invitation and its inviter",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := e.client().Invitation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if showJSON {
				return e.PrintJSON(d)
			}
			printInvitationDetail(e.Stdout, d)
			return nil
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")
	policy := &cobra.Command{
		Use:   "policy [anyone|contacts|nobody] [--json]",
		Short: "Show or set whose invitations this node takes (default anyone)",
		Long: `Show or set whose invitations this node takes: anyone (each is marked trusted or
not), contacts (trusted contacts, or peers a contact endorsed, only), or
nobody. Refused invitations are declined at once with the reason "not
accepting invitations".`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"anyone", "contacts", "nobody"},
		RunE: func(cmd *cobra.Command, args []string) error {
			c := e.client()
			var p apitype.Policy
			var err error
			if len(args) == 0 {
				p, err = c.InvitationPolicy(cmd.Context())
			} else {
				p, err = c.SetInvitationPolicy(cmd.Context(), apitype.Policy(args[0]))
			}
			if err != nil {
				return err
			}
			if policyJSON {
				return e.PrintJSON(apitype.PolicyBody{Policy: p})
			}
			fmt.Fprintf(e.Stdout, "Invitations taken from: %s\n", p)
			return nil
		},
	}
	policy.Flags().BoolVar(&policyJSON, "json", false, `print JSON: {"policy": POLICY}`)
	cmd.AddCommand(show, policy)
	return cmd
}

func printInvitationDetail(w io.Writer, d apitype.InvitationDetail) {
	r := d.Invitation
	fmt.Fprintf(w, "invitation:  %s (%s)\napplication: %s\nstate:       %s", r.ID, r.Direction, r.AppID, r.State)
	if r.Reason != "" {
		fmt.Fprintf(w, " (%s)", r.Reason)
	}
	fmt.Fprintf(w, "\npeer:        %s (%s)\nexpires:     %s\n", r.PeerName, r.Peer, r.Expires.Local().Format(time.DateTime))
	if r.Message != "" {
		fmt.Fprintf(w, "message:     %s\n", r.Message)
	}
	if len(r.Data) > 0 {
		fmt.Fprintf(w, "data:        %d bytes\n", len(r.Data))
	}
	if r.SessionID != "" {
		fmt.Fprintf(w, "session:     %s\n", r.SessionID)
	}
	if d.Inviter != nil {
		fmt.Fprintln(w, "inviter's card:")
		printCard(w, *d.Inviter)
	}
}

func (e *Env) launchInfoCmd() *cobra.Command {
	var asJSON bool
	var id string
	cmd := &cobra.Command{
		Use:   "launch-info [--json] [--id ID]",
		Short: "Show the invitation that launched this application",
		Long: `For an application started by an accepted invitation: print the invitation,
its inviter and the inviter's card (Windows' GetAppLaunchInfo). The invitation
is taken from $` + apitype.EnvInvitation + `, which the daemon sets when it launches the
application, or from --id.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				id = envInvitation()
			}
			if id == "" {
				return errors.New("this process was not launched by an invitation ($" + apitype.EnvInvitation + " is not set); pass --id ID")
			}
			d, err := e.client().Invitation(cmd.Context(), id)
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(d)
			}
			printInvitationDetail(e.Stdout, d)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&id, "id", "", "invitation ID (default $"+apitype.EnvInvitation+")")
	return cmd
}
