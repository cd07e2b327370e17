// Package cli is the peercollab command line. Its commands are clients of a
// running daemon's local API (package client), and testnet; the commands
// that run a node in this process (init, daemon, relay) live in package
// daemon, and main hands them to Run.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
)

// HomeEnv names the environment variable that sets the data directory.
const HomeEnv = "PEERCOLLAB_HOME"

// Env is what every command shares: where it writes and which data
// directory it uses. Home is set once the command line is parsed, before
// any command runs.
type Env struct {
	Stdout, Stderr io.Writer
	Home           string
}

// Run runs the command line args (without the program name), writing to
// stdout and stderr. more adds the commands of other packages (main adds
// daemon's). The error it returns is for a person: print it with Sentence.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, more ...func(*Env) []*cobra.Command) error {
	setupLogging()
	e := &Env{Stdout: stdout, Stderr: stderr}
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
	root.PersistentFlags().StringVar(&e.Home, "home", "", "data directory (default $"+HomeEnv+", else ~/.peercollab)")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.AddCommand(
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
	for _, cmds := range more {
		root.AddCommand(cmds(e)...)
	}
	err := root.ExecuteContext(ctx)
	if client.IsNoDaemon(err) {
		return fmt.Errorf("no peercollab daemon is running for %s; start one with `peercollab --home %s daemon`", e.Home, e.Home)
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
func envInvitation() string { return os.Getenv(apitype.EnvInvitation) }

func (e *Env) resolveHome() error {
	if e.Home == "" {
		e.Home = os.Getenv(HomeEnv)
	}
	if e.Home == "" {
		dir, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("cannot find your home directory; pass --home or set $%s", HomeEnv)
		}
		e.Home = filepath.Join(dir, ".peercollab")
	}
	abs, err := filepath.Abs(e.Home)
	if err != nil {
		return err
	}
	e.Home = abs
	return nil
}

func (e *Env) client() *client.Client { return client.New(e.Home) }

// PrintJSON writes v to Stdout as indented JSON, as every --json does.
func (e *Env) PrintJSON(v any) error {
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printJSONLine writes v as one line of JSON.
func (e *Env) printJSONLine(v any) error { return json.NewEncoder(e.Stdout).Encode(v) }

// Sentence turns an error into one sentence for a person.
func Sentence(err error) string { return client.Sentence(err) }

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
func (e *Env) writeOutput(path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := e.Stdout.Write(data)
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
