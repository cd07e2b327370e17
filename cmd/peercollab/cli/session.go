package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) sessionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "session",
		Short: "Host and take part in collaboration sessions",
		Long: `A session is hosted by one node for an application. The host creates it,
invites peers (who join when they accept), may cancel the unanswered
invitations, starts it, and ends it. Members exchange the application's
messages, each sender's in order, sealed so that only current members read
them. SID is a session ID or a unique prefix of one (4 characters at least).`,
	}
	var asJSON bool
	jsonFlag := func(c *cobra.Command) *cobra.Command {
		c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		return c
	}
	show := func(cmd *cobra.Command, v apitype.Session) error {
		if asJSON {
			return e.PrintJSON(v)
		}
		printSession(e.Stdout, v, e.peerNames(cmd.Context()))
		return nil
	}
	c := e.client
	var app string
	create := &cobra.Command{
		Use:   "create --app APPID",
		Short: "Host a new session for an application",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := c().CreateSession(cmd.Context(), app)
			if err != nil {
				return err
			}
			return show(cmd, v)
		},
	}
	create.Flags().StringVar(&app, "app", "", "application ID")
	create.MarkFlagRequired("app")

	var message string
	var timeout time.Duration
	inv := &cobra.Command{
		Use:   "invite SID PEER... [--message M] [--timeout D]",
		Short: "Invite peers to a session you host",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apitype.SessionInviteRequest{Peers: args[1:], Message: message}
			if timeout > 0 {
				req.Timeout = timeout.String()
			}
			res, err := c().SessionInvite(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(res)
			}
			printInvitations(e.Stdout, res.Invitations)
			return nil
		},
	}
	inv.Flags().StringVarP(&message, "message", "m", "", "message for the invitees")
	inv.Flags().DurationVar(&timeout, "timeout", 0, "how long the invitations wait for an answer (default 5m)")

	status := &cobra.Command{
		Use:   "status SID [--json]",
		Short: "Show a session: state, members, and the tally of its invitations",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := c().Session(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return show(cmd, v)
		},
	}
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the sessions you host or take part in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vs, err := c().Sessions(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(orEmpty(vs))
			}
			if len(vs) == 0 {
				fmt.Fprintln(e.Stdout, "No sessions.")
				return nil
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAPPLICATION\tSTATE\tROLE\tMEMBERS\tSENT\tRECEIVED")
			for _, v := range vs {
				role := string(v.Me) // member, invited, removed, left
				if v.Hosting {
					role = "host"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", v.ID[:12], v.AppID, v.State, role, len(v.Members), v.Sent, v.Received)
			}
			return tw.Flush()
		},
	}
	op := func(name, short, api string) *cobra.Command {
		return jsonFlag(&cobra.Command{
			Use:   name + " SID",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				v, err := c().SessionOp(cmd.Context(), args[0], api)
				if err != nil {
					return err
				}
				return show(cmd, v)
			},
		})
	}
	send := &cobra.Command{
		Use:   "send SID MESSAGE",
		Short: "Send a message to the session's members",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := c().SessionSend(cmd.Context(), args[0], []byte(args[1]))
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(m)
			}
			fmt.Fprintf(e.Stdout, "Sent message %d\n", m.Seq)
			return nil
		},
	}
	remove := &cobra.Command{
		Use:   "remove SID PEER",
		Short: "Remove a member from a session you host (it reads nothing that follows)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := c().SessionRemove(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return show(cmd, v)
		},
	}
	var after uint64
	messages := &cobra.Command{
		Use:   "messages SID [--after N] [--json]",
		Short: "Print the messages delivered in a session",
		Long: `Print the messages delivered in a session: on a terminal a table with the
senders' names; piped, one line per message with its index, its sender's peer
ID, the sender's number for it and its text, separated by tabs (--json for
all of each message).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := c().SessionMessages(cmd.Context(), args[0], after)
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(orEmpty(ms))
			}
			if !isTerminal(e.Stdout) {
				// Piped: the lines that scripts read, INDEX, SENDER's
				// peer ID, SEQ and the text, tab-separated.
				for _, m := range ms {
					fmt.Fprintf(e.Stdout, "%d\t%s\t%d\t%s\n", m.Index, m.Sender, m.Seq, m.Data)
				}
				return nil
			}
			return printMessages(e.Stdout, ms, e.peerNames(cmd.Context()))
		},
	}
	messages.Flags().Uint64Var(&after, "after", 0, "only messages after this index")
	cmd.AddCommand(jsonFlag(create), jsonFlag(inv), jsonFlag(status), jsonFlag(list),
		op("cancel-unanswered", "Cancel the invitations of a session you host that have no answer", "cancel-unanswered"),
		op("start", "Start a session you host with those who accepted", "start"),
		op("end", "End a session you host", "end"),
		op("leave", "Leave a session", "leave"),
		jsonFlag(send), jsonFlag(remove), jsonFlag(messages))
	return cmd
}

func printSession(w io.Writer, v apitype.Session, names func(peer.ID) string) {
	fmt.Fprintf(w, "session:     %s\napplication: %s\nstate:       %s\nhost:        %s", v.ID, v.AppID, v.State, names(v.Host))
	if v.Hosting {
		fmt.Fprint(w, " (you)")
	}
	fmt.Fprintf(w, "\nroster:      version %d, key epoch %d\nmembers:     %d\n", v.Version, v.Epoch, len(v.Members))
	for _, m := range v.Members {
		fmt.Fprintf(w, "  %-16s %s\n", names(m), m)
	}
	if !v.Hosting {
		fmt.Fprintf(w, "you:         %s (joined: %s)\n", v.Me, yesNo(v.Joined))
	}
	if len(v.Standing) > 0 {
		var lines []string
		for p, st := range v.Standing {
			if p != v.Host.String() {
				name := p
				if id, err := peer.Decode(p); err == nil {
					name = fmt.Sprintf("%-16s %s", names(id), p)
				}
				lines = append(lines, fmt.Sprintf("  %s %s", name, st))
			}
		}
		sort.Strings(lines)
		if len(lines) > 0 {
			fmt.Fprintf(w, "invited:\n%s\n", strings.Join(lines, "\n"))
		}
	}
	if v.Tally != nil {
		fmt.Fprintln(w, tallyLine(*v.Tally))
	}
	fmt.Fprintf(w, "messages:    %d sent, %d received\n", v.Sent, v.Received)
	if v.Error != "" {
		fmt.Fprintf(w, "last error:  %s\n", v.Error)
	}
}

func (e *Env) hostRequestCmd() *cobra.Command {
	var app, message string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "host-request PEER --app APPID [--message M]",
		Short: "Ask a peer to host a session for an application and invite you",
		Long: `Ask a peer to host a session for an application. It accepts at once (when its
application takes host requests automatically) or its user decides; either
way, on acceptance it creates the session and invites you, and this node
accepts that invitation by itself (the application must be registered here).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := e.client().RequestHost(cmd.Context(), apitype.HostRequestBody{Peer: args[0], AppID: app, Message: message})
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(res)
			}
			name := e.peerNames(cmd.Context())(res.Peer)
			if res.Pending {
				fmt.Fprintf(e.Stdout, "%s will decide; its invitation will come if it agrees.\n", name)
			} else {
				fmt.Fprintf(e.Stdout, "%s hosts session %s and invites you.\n", name, res.Session)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "application ID")
	cmd.Flags().StringVarP(&message, "message", "m", "", "message for the peer")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("app")
	return cmd
}

func (e *Env) hostRequestsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "host-requests [--json] | accept ID | decline ID",
		Short: "List the requests to host a session you received; accept or decline them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := e.client().HostRequests(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return e.PrintJSON(orEmpty(rs))
			}
			if len(rs) == 0 {
				fmt.Fprintln(e.Stdout, "No host requests.")
				return nil
			}
			names := e.peerNames(cmd.Context())
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tFROM\tAPPLICATION\tSTATE\tSESSION\tMESSAGE")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID[:12], names(r.From), r.AppID, r.State, short(r.Session), r.Message)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	for _, verb := range []string{"accept", "decline"} {
		cmd.AddCommand(&cobra.Command{
			Use:   verb + " ID",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " a host request",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, err := e.client().AnswerHostRequest(cmd.Context(), args[0], verb == "accept")
				if err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "Host request %s: %s", r.ID, r.State)
				if r.Session != "" {
					fmt.Fprintf(e.Stdout, " (session %s)", r.Session)
				}
				fmt.Fprintln(e.Stdout)
				return nil
			},
		})
	}
	return cmd
}

// short is the first 12 characters of an ID, as the lists show them.
func short(id string) string { return id[:min(12, len(id))] }

// printMessages prints a session's messages as a table, senders by name.
func printMessages(w io.Writer, ms []apitype.Message, names func(peer.ID) string) error {
	if len(ms) == 0 {
		fmt.Fprintln(w, "No messages.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tTIME\tFROM\tSEQ\tMESSAGE")
	for _, m := range ms {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", m.Index, m.Time.Local().Format(time.TimeOnly), names(m.Sender), m.Seq, strings.TrimRight(string(m.Data), "\n"))
	}
	return tw.Flush()
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
