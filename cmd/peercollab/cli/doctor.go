package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
)

func (e *Env) doctorCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor [--json]",
		Short: "Check the daemon, People Near Me, addresses, reachability, relays, hole punching, DHT, clock and invitations",
		Long: `Run the checks a user can read and act on, each with what to do:

  daemon         the daemon answers on its socket
  nearme         signed in to People Near Me, and the interfaces that can multicast
  listen         the addresses and ports the node listens on
  reachability   whether others can dial this node (AutoNAT), its public addresses
  relays         each relay reservation, or why there is none
  hole-punching  whether relayed connections can become direct (DCUtR)
  dht            whether the node has a DHT, and how many servers it is connected to
  clock          whether the system clock is synchronized (cards and invitations carry times)
  invitations    whose invitations this node takes

The daemon runs the checks (GET /v1/doctor), so that they see its network,
not this command's. Exits non-zero when a check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := e.client().Doctor(cmd.Context())
			if client.IsNoDaemon(err) {
				rep = apitype.DoctorReport{Time: time.Now().UTC(), Checks: []apitype.DoctorCheck{{
					ID: "daemon", Title: "Daemon", Status: apitype.CheckFail,
					Detail: "no daemon answers on " + apitype.SocketPath(e.Home),
					Advice: fmt.Sprintf("start one with `peercollab --home %s daemon`", e.Home),
				}}}
			} else if err != nil {
				return err
			}
			failed := 0
			for _, c := range rep.Checks {
				if c.Status == apitype.CheckFail {
					failed++
				}
			}
			if asJSON {
				if err := e.PrintJSON(rep); err != nil {
					return err
				}
			} else {
				for _, c := range rep.Checks {
					fmt.Fprintf(e.Stdout, "%-4s  %-20s %s\n", strings.ToUpper(c.Status), c.Title, c.Detail)
					if c.Advice != "" && c.Status != apitype.CheckOK {
						fmt.Fprintf(e.Stdout, "      %-20s → %s\n", "", c.Advice)
					}
				}
			}
			if failed > 0 {
				return errors.New(plural(failed, "check") + " failed; see what to do above")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
