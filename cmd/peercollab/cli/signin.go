package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func (e *Env) signinCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "signin [nearme|internet|all]",
		Short: "Sign in: appear to the people near (nearme) and to your contacts (internet)",
		Long: `Sign in to a scope (default all). nearme announces this node on the subnet with
mDNS and lists the people near; internet serves your contacts wherever they
are. Signing in sets your presence to online.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"nearme", "internet", "all"},
		RunE: func(cmd *cobra.Command, args []string) error {
			now, err := e.client().SignIn(cmd.Context(), scopeArg(args))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "Signed in: %s\n", now)
			return nil
		},
	}
}

func (e *Env) signoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "signout [nearme|internet|all]",
		Short: "Sign out of a scope (default all)",
		Long: `Sign out of a scope (default all). Leaving nearme tells the people near at once;
leaving every scope sets your presence to offline and unpublishes your objects.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"nearme", "internet", "all"},
		RunE: func(cmd *cobra.Command, args []string) error {
			now, err := e.client().SignOut(cmd.Context(), scopeArg(args))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "Signed in: %s\n", now)
			return nil
		},
	}
}

// scopeArg is the scope a command names, all by default. The daemon checks
// it, and takes "near" and any case too.
func scopeArg(args []string) apitype.Scope {
	if len(args) == 0 {
		return apitype.ScopeAll
	}
	return apitype.Scope(args[0])
}
