package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/client"
)

func (e *Env) eventsCmd() *cobra.Command {
	var asJSON bool
	var after uint64
	var types []string
	cmd := &cobra.Command{
		Use:   "events [--json] [--types T,...] [--after SEQ]",
		Short: "Follow the node's event stream",
		Long: `Print the node's events as they happen (contacts, people near me, presence,
invitations, sessions) until interrupted. With --json each event is one line
of JSON: {"seq":N,"time":...,"type":...,"data":{...}}. Once the stream is
open it says so on standard error, so a script can wait for that line before
it causes the events it wants to see. --types keeps the events whose type is
or starts with one of those given ("session." for every session event);
--after SEQ first replays the events after SEQ that the daemon still keeps
(the latest 1024), with an events.lost event in place of older ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			opts := []client.EventsOption{client.Types(types...)}
			if cmd.Flags().Changed("after") {
				opts = append(opts, client.After(after))
			}
			s, err := e.client().Events(ctx, opts...)
			if err != nil {
				return err
			}
			defer context.AfterFunc(ctx, func() { s.Close() })()
			defer s.Close()
			// The daemon has subscribed this stream by now: a script can
			// wait for this line before it causes the events it wants.
			fmt.Fprintln(e.Stderr, "Following the node's events; Ctrl-C stops.")
			for {
				ev, err := s.Next(ctx)
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
				if asJSON {
					fmt.Fprintf(e.Stdout, `{"seq":%d,"time":%q,"type":%q,"data":%s}`+"\n", ev.Seq, ev.Time.Format("2006-01-02T15:04:05.000000Z07:00"), ev.Type, ev.Data)
				} else {
					fmt.Fprintf(e.Stdout, "%s  %-20s %s\n", ev.Time.Local().Format("15:04:05.000"), ev.Type, ev.Data)
				}
			}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().StringSliceVar(&types, "types", nil, "only these event types, or types starting with these")
	cmd.Flags().Uint64Var(&after, "after", 0, "first replay the kept events after this sequence number")
	return cmd
}
