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
	"strings"

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
	// Version is the peercollab version of this binary.
	Version string
}

// Run runs the command line args (without the program name), writing to
// stdout and stderr. version is the peercollab version of the binary
// (node.Version, which the command line does not link); more adds the
// commands of other packages (main adds daemon's). The error it returns
// is for a person: print it with Sentence. A command run with --json that
// fails also prints the error as an apitype.ErrorBody on stdout.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, version string, more ...func(*Env) []*cobra.Command) error {
	setupLogging()
	e := &Env{Stdout: stdout, Stderr: stderr, Version: version}
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
	root.Version = version
	root.SetVersionTemplate(`peercollab {{.Version}}` + "\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.AddCommand(
		e.idCmd(),
		e.meCmd(),
		e.cardCmd(),
		e.contactsCmd(),
		e.deviceCmd(),
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
		e.forgetCmd(),
		e.inviteCmd(),
		e.invitationsCmd(),
		e.launchInfoCmd(),
		e.sessionCmd(),
		e.hostRequestCmd(),
		e.hostRequestsCmd(),
		e.chatCmd(),
		e.testnetCmd(),
		e.versionCmd(),
		e.doctorCmd(),
		e.logCmd(),
	)
	for _, cmds := range more {
		root.AddCommand(cmds(e)...)
	}
	e.tidy(root)
	cmd, err := root.ExecuteContextC(ctx)
	if client.IsNoDaemon(err) {
		err = &apitype.Error{Code: apitype.CodeNoDaemon, Message: fmt.Sprintf("No peercollab daemon is running for %s; start one with `peercollab --home %s daemon`.", e.Home, e.Home)}
	}
	if err != nil && cmd != nil {
		if f := cmd.Flags().Lookup("json"); f != nil && f.Changed && f.Value.String() == "true" {
			e.PrintJSON(apitype.ErrorBody{Error: asAPIError(err)})
		}
	}
	return err
}

// asAPIError is err as the API would put it: an API error as it is, any
// other (the command line's own) with code "cli".
func asAPIError(err error) *apitype.Error {
	var apiErr *apitype.Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	return &apitype.Error{Code: "cli", Message: Sentence(err)}
}

// tidy walks the command tree: a command group (one with subcommands and
// nothing to do of its own) refuses an unknown subcommand instead of
// printing its help; every command's wrong arguments are said with its
// usage; PEER, SID and ID arguments complete from the daemon.
func (e *Env) tidy(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		e.tidy(c)
	}
	if cmd.HasSubCommands() && cmd.RunE == nil && cmd.Run == nil {
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return unknownCommand(cmd, args[0])
		}
	} else if cmd.Args != nil {
		check := cmd.Args
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				if c.HasSubCommands() && len(args) > 0 && strings.HasPrefix(err.Error(), "unknown command") {
					return unknownCommand(c, args[0])
				}
				return fmt.Errorf("usage: %s (%s)", usageLine(c), strings.ToLower(strings.TrimSuffix(err.Error(), ".")))
			}
			return nil
		}
	}
	if cmd.ValidArgsFunction == nil && len(cmd.ValidArgs) == 0 {
		cmd.ValidArgsFunction = e.completeArgs
	}
}

// unknownCommand refuses sub, which is no subcommand of cmd, and says which
// it may have meant.
func unknownCommand(cmd *cobra.Command, sub string) error {
	msg := fmt.Sprintf("no command %q in %s", sub, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(sub); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
		return errors.New(msg)
	}
	names := []string{}
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return fmt.Errorf("%s; it has %s", msg, strings.Join(names, ", "))
}

// usageLine is cmd's usage: its path and the arguments of its Use.
func usageLine(cmd *cobra.Command) string {
	use := cmd.Use
	if i := strings.IndexByte(use, ' '); i >= 0 {
		use = use[i:]
	} else {
		use = ""
	}
	return cmd.CommandPath() + use
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
