package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/testnet"
)

func (e *Env) testnetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Run scripted test networks of real nodes in network namespaces (needs root)",
		Long: `Run scenario files: networks of subnets, NAT routers and relays built from
Linux network namespaces, with real peercollab nodes in them, driven step by
step and checked against expectations. Needs root, iproute2 and nftables.
The scenario format is described in testnet/README.md.`,
	}
	cmd.AddCommand(e.testnetRunCmd())
	return cmd
}

func (e *Env) testnetRunCmd() *cobra.Command {
	var report string
	cmd := &cobra.Command{
		Use:   "run SCENARIO.yaml [--report FILE]",
		Short: "Run a scenario and print each step's outcome; exits non-zero when a step fails",
		Long: `Build the scenario's network, start its nodes (this very binary), run its
steps in order and remove everything again, also on failure and on Ctrl-C.
Each step's outcome and duration is printed as it finishes. With --report the
report is also written as JSON to FILE, and the nodes' logs and recorded
events are kept in FILE's name with .logs instead of its extension; without
it they are kept in a temporary directory only when the run fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := testnet.ParseFile(args[0])
			if err != nil {
				return err
			}
			bin, err := os.Executable()
			if err != nil {
				return errors.New("cannot find the peercollab binary to run the nodes with")
			}
			opts := testnet.Options{Binary: bin, Progress: e.Stdout}
			if report != "" {
				opts.LogDir = strings.TrimSuffix(report, filepath.Ext(report)) + ".logs"
			}
			rep, err := testnet.Run(cmd.Context(), sc, opts)
			if rep != nil {
				rep.PrintSummary(e.Stdout)
				if report != "" {
					if werr := rep.WriteFile(report); werr != nil && err == nil {
						err = werr
					}
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&report, "report", "", "write the report as JSON to FILE (node logs go next to it)")
	return cmd
}
