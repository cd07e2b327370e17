package invitations

import (
	"errors"
	"fmt"

	"github.com/peercollab/peercollab/node/state"
)

// Policy says whose invitations a node takes.
type Policy string

// Policies.
const (
	Anyone   Policy = "anyone"
	Contacts Policy = "contacts"
	Nobody   Policy = "nobody"
)

// ParsePolicy reads a policy name.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Anyone, Contacts, Nobody:
		return p, nil
	}
	return "", fmt.Errorf("%w %q (anyone, contacts or nobody)", ErrBadPolicy, s)
}

// Where the policy is kept in Config.Settings: the node's settings bucket,
// where nodes kept it before the service owned it.
const (
	settingsBucket = "settings"
	policyKey      = "invitation_policy"
)

// loadPolicy reads the stored policy: none means Anyone (as in Windows;
// untrusted invitations are marked as such), and so does a damaged or
// unknown one (logged), so that one bad value never keeps the node from
// starting.
func loadPolicy(db *state.DB) (Policy, error) {
	if db == nil {
		return Anyone, nil
	}
	p := Anyone
	_, err := db.Get(settingsBucket, policyKey, &p)
	switch {
	case errors.Is(err, state.ErrCorrupt):
		log.Errorw("damaged invitation policy ignored; taking invitations from anyone", "error", err)
		return Anyone, nil
	case err != nil:
		return "", err
	}
	if _, err := ParsePolicy(string(p)); err != nil {
		log.Errorw("stored invitation policy ignored; taking invitations from anyone", "error", err)
		return Anyone, nil
	}
	return p, nil
}

// Policy says whose invitations the node takes.
func (s *Service) Policy() Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy
}

// SetPolicy changes whose invitations the node takes, durably (in
// Config.Settings).
func (s *Service) SetPolicy(p Policy) error {
	if _, err := ParsePolicy(string(p)); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Settings != nil {
		if err := s.cfg.Settings.Put(settingsBucket, policyKey, p); err != nil {
			return err
		}
	}
	s.policy = p
	return nil
}
