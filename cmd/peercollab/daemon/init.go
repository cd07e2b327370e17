package daemon

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/contacts"
)

func (e env) initCmd() *cobra.Command {
	var p contacts.Profile
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "init [--name NAME] [--email ADDR]",
		Short: "Create this node's identity (never overwrites one)",
		Long: `Create the identity of the data directory: an Ed25519 key and a self-signed
X.509 peer certificate naming you. Running it again changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if p.DisplayName == "" {
				p.DisplayName = defaultName()
			}
			res, err := initHome(e.Home, p)
			if err != nil {
				return userError(err)
			}
			if asJSON {
				return e.PrintJSON(res)
			}
			if res.Created {
				fmt.Fprintf(e.Stdout, "Created the identity of %s in %s\npeer ID: %s\n", res.DisplayName, e.Home, res.PeerID)
			} else {
				fmt.Fprintf(e.Stdout, "%s already holds an identity; nothing changed\npeer ID: %s\n", e.Home, res.PeerID)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&p.DisplayName, "name", "", "display name (default user@host)")
	cmd.Flags().StringVar(&p.Email, "email", "", "e-mail address for the certificate")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type initResult struct {
	PeerID      peer.ID `json:"peer_id"`
	DisplayName string  `json:"display_name,omitempty"`
	Home        string  `json:"home"`
	Created     bool    `json:"created"`
}

// initHome creates the identity and "me" contact of home unless they exist.
func initHome(home string, p contacts.Profile) (initResult, error) {
	if err := p.Check(); err != nil {
		return initResult{}, err
	}
	id, created, err := contacts.CreateIdentity(home)
	if err != nil {
		return initResult{}, err
	}
	res := initResult{PeerID: id.ID(), Home: home, Created: created}
	s, err := contacts.OpenStore(filepath.Join(home, contacts.StoreFile), nil)
	if errors.Is(err, contacts.ErrStoreLocked) && !created {
		return res, nil // a daemon runs on this home: it is initialised
	}
	if err != nil {
		return res, err
	}
	defer s.Close()
	me, _, err := contacts.EnsureMe(s, id, p, time.Now())
	if err != nil {
		return res, err
	}
	res.DisplayName = me.DisplayName
	return res, nil
}
