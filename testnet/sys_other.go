//go:build !linux

package testnet

import (
	"errors"
	"syscall"
)

// childAttrs: scenarios run on Linux only (see supported).
func childAttrs(bool) *syscall.SysProcAttr { return nil }

// kill: scenarios run on Linux only (see supported).
func kill(int, syscall.Signal) error { return supported() }

// supported says why this system cannot run scenarios.
func supported() error {
	return errors.New("testnet builds its networks from Linux network namespaces; run it on Linux")
}
