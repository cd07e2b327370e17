package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node"
)

func (e *env) signinCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "signin [nearme|internet|all]",
		Short: "Sign in: appear to the people near (nearme) and to your contacts (internet)",
		Long: `Sign in to a scope (default all). nearme announces this node on the subnet with
mDNS and lists the people near; internet serves your contacts wherever they
are. Signing in sets your presence to online.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"nearme", "internet", "all"},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := scopeArg(args)
			if err != nil {
				return err
			}
			now, err := e.client().SignIn(cmd.Context(), s)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Signed in: %s\n", now)
			return nil
		},
	}
}

func (e *env) signoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "signout [nearme|internet|all]",
		Short: "Sign out of a scope (default all)",
		Long: `Sign out of a scope (default all). Leaving nearme tells the people near at once;
leaving every scope sets your presence to offline and unpublishes your objects.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"nearme", "internet", "all"},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := scopeArg(args)
			if err != nil {
				return err
			}
			now, err := e.client().SignOut(cmd.Context(), s)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Signed in: %s\n", now)
			return nil
		},
	}
}

func scopeArg(args []string) (node.Scope, error) {
	if len(args) == 0 {
		return node.ScopeAll, nil
	}
	return node.ParseScope(args[0])
}
