package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
)

// versionReport is what `peercollab version --json` prints: this binary's
// build, and the running daemon's (absent when none answers).
type versionReport struct {
	Client apitype.VersionInfo  `json:"client"`
	Daemon *apitype.VersionInfo `json:"daemon,omitempty"`
}

func (e *Env) versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Show the version, commit, Go and go-libp2p versions of this binary and of the running daemon",
		Long: `Show what this binary was built from (version, VCS commit, Go and go-libp2p
versions, system), and the same of the daemon that runs for the data
directory, if one does. 'peercollab --version' prints the version alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep := versionReport{Client: apitype.ReadVersion(e.Version)}
			d, err := e.client().Version(cmd.Context())
			switch {
			case err == nil:
				rep.Daemon = &d
			case !client.IsNoDaemon(err):
				return err
			}
			if asJSON {
				return e.PrintJSON(rep)
			}
			printVersion(e.Stdout, "", rep.Client)
			switch {
			case rep.Daemon == nil:
				fmt.Fprintf(e.Stdout, "daemon:     not running for %s\n", e.Home)
			case *rep.Daemon != rep.Client:
				fmt.Fprintln(e.Stdout, "daemon, which differs:")
				printVersion(e.Stdout, "  ", *rep.Daemon)
			default:
				fmt.Fprintln(e.Stdout, "daemon:     the same build")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printVersion(w io.Writer, indent string, v apitype.VersionInfo) {
	fmt.Fprintf(w, "%speercollab %s\n", indent, v.Version)
	fmt.Fprintf(w, "%scommit:     %s", indent, orUnknown(v.Commit))
	if !v.CommitTime.IsZero() {
		fmt.Fprintf(w, " (%s)", v.CommitTime.UTC().Format(time.DateTime))
	} else if v.Commit == "" {
		fmt.Fprint(w, " (built without VCS information)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%sgo:         %s\n%sgo-libp2p:  %s\n%ssystem:     %s/%s\n", indent, v.Go, indent, orUnknown(v.Libp2p), indent, v.OS, v.Arch)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
