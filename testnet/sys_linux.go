package testnet

import "syscall"

// childAttrs are the process attributes of the commands and nodes the
// harness starts: killed with the harness (Pdeathsig), and, when group is
// set, in a process group of their own, so that a terminal's Ctrl-C reaches
// the harness only and it stops them in order.
func childAttrs(group bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: group, Pdeathsig: syscall.SIGKILL}
}

// supported says why this system cannot run scenarios, or nil.
func supported() error { return nil }

// kill sends sig to process pid (to its process group when pid is
// negative).
func kill(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
