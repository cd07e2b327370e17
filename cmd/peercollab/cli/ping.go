package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) pingCmd() *cobra.Command {
	var count int
	var interval time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ping PEER|MULTIADDR [--count N] [--json]",
		Short: "Connect to a peer and measure round trips (libp2p ping)",
		Long: `Connect to a peer and measure round-trip times with libp2p's ping protocol,
and say whether the connection is direct or relayed. PEER is a contact
(nickname, peer ID, or unique prefix) or a peer ID; MULTIADDR ends in
/p2p/PEERID and may go through a relay (.../p2p/RELAYID/p2p-circuit/p2p/PEERID).
With --json each round trip is one line of JSON.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !asJSON {
				// Dialing a peer that is offline takes a while: say so.
				fmt.Fprintf(e.Stderr, "Connecting to %s…\n", args[0])
			}
			res, err := e.client().Ping(cmd.Context(), apitype.PingRequest{Target: args[0], Count: count, Interval: interval.String()})
			if err != nil {
				return err
			}
			name := e.peerNames(cmd.Context())(res.Peer)
			failed := 0
			for _, r := range res.Results {
				if r.Error != "" {
					failed++
				}
				if asJSON {
					if err := e.printJSONLine(map[string]any{"peer": res.Peer, "seq": r.Seq, "rtt_ms": float64(r.RTT.Microseconds()) / 1000,
						"addr": r.Conn.Addr, "relayed": r.Conn.Relayed, "error": r.Error}); err != nil {
						return err
					}
					continue
				}
				if r.Error != "" {
					fmt.Fprintf(e.Stdout, "ping %d to %s failed: %s\n", r.Seq, name, r.Error)
					continue
				}
				how := "direct"
				if r.Conn.Relayed {
					how = "relayed"
				}
				fmt.Fprintf(e.Stdout, "pong %d from %s: %.2f ms (%s, %s)\n", r.Seq, name, float64(r.RTT.Microseconds())/1000, how, r.Conn.Addr)
			}
			if failed > 0 || len(res.Results) == 0 {
				return fmt.Errorf("%d of %d pings to %s failed", count-len(res.Results)+failed, count, name)
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&count, "count", "c", 3, "number of round trips")
	cmd.Flags().DurationVarP(&interval, "interval", "i", 200*time.Millisecond, "time between round trips")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per round trip")
	return cmd
}
