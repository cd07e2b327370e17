// Package cli is the peercollab command line. Every command but init,
// daemon, relay and testnet is a client of a running daemon's local API.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/localapi"
)

// HomeEnv names the environment variable that sets the data directory.
const HomeEnv = "PEERCOLLAB_HOME"

// env is what every command shares: where it writes and which home it uses.
type env struct {
	stdout, stderr io.Writer
	home           string
}

// Run runs the command line args (without the program name), writing to
// stdout and stderr. The error it returns is for a person: print it with
// Sentence.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	setupLogging()
	e := &env{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "peercollab",
		Short: "People Near Me on libp2p: find people, keep contacts, invite them to collaborate",
		Long: `peercollab finds the people on your subnet, keeps a contact list of
certificate-backed identities, invites contacts into collaboration sessions and
reaches them across subnets and NAT.

Start a node with 'peercollab daemon'; every other command talks to it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return e.resolveHome()
		},
	}
	root.PersistentFlags().StringVar(&e.home, "home", "", "data directory (default $"+HomeEnv+", else ~/.peercollab)")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.AddCommand(
		e.initCmd(),
		e.daemonCmd(),
		e.relayCmd(),
		e.idCmd(),
		e.cardCmd(),
		e.contactsCmd(),
		e.eventsCmd(),
		e.pingCmd(),
		e.signinCmd(),
		e.signoutCmd(),
		e.nearCmd(),
		e.presenceCmd(),
		e.nameCmd(),
		e.appsCmd(),
		e.objectsCmd(),
		e.watchCmd(),
		e.unwatchCmd(),
		e.inviteCmd(),
		e.invitationsCmd(),
		e.launchInfoCmd(),
		e.sessionCmd(),
		e.hostRequestCmd(),
		e.hostRequestsCmd(),
		e.chatCmd(),
		e.testnetCmd(),
	)
	err := root.ExecuteContext(ctx)
	if localapi.IsNoDaemon(err) {
		return fmt.Errorf("no peercollab daemon is running for %s; start one with `peercollab --home %s daemon`", e.home, e.home)
	}
	return err
}

func setupLogging() {
	gologshim.SetDefaultHandler(logging.SlogHandler())
	if os.Getenv("GOLOG_LOG_LEVEL") == "" {
		logging.SetLogLevel("*", "error")
		logging.SetLogLevelRegex("peercollab/.*", "info")
	}
}

// envInvitation is the invitation that launched this process, if any.
func envInvitation() string { return os.Getenv(invitations.EnvInvitation) }

func (e *env) resolveHome() error {
	if e.home == "" {
		e.home = os.Getenv(HomeEnv)
	}
	if e.home == "" {
		dir, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("cannot find your home directory; pass --home or set $%s", HomeEnv)
		}
		e.home = filepath.Join(dir, ".peercollab")
	}
	abs, err := filepath.Abs(e.home)
	if err != nil {
		return err
	}
	e.home = abs
	return nil
}

func (e *env) client() *localapi.Client { return localapi.NewClient(e.home) }

// printJSON writes v as indented JSON.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printJSONLine writes v as one line of JSON.
func (e *env) printJSONLine(v any) error { return json.NewEncoder(e.stdout).Encode(v) }

// Sentence turns an error into one sentence for a person.
func Sentence(err error) string { return localapi.Sentence(err) }

// defaultName is user@host, the display name of a node nobody named.
func defaultName() string {
	name := "peercollab"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

// readInput reads a file, or standard input for "-".
func readInput(cmd *cobra.Command, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, unwrapPathError(err))
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// writeOutput writes data to path with mode 0644, or to stdout for "" or "-".
func (e *env) writeOutput(path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPathError(err))
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
