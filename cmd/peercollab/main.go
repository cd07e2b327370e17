// Command peercollab is the peercollab node: daemon, command-line client and
// relay in one binary. See `peercollab --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/peercollab/peercollab/cmd/peercollab/cli"
	"github.com/peercollab/peercollab/cmd/peercollab/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, daemon.Version, daemon.Commands)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, cli.Sentence(err))
		os.Exit(1)
	}
}
