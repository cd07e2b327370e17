package node

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// listenLock serialises the port probe and the bind of daemons that start at
// once in one network namespace, so that two of them cannot both find the
// default port free. On Linux it is an abstract unix socket: abstract
// socket names belong to the network namespace, and the kernel releases
// one when its process ends, so no file is left behind.
func listenLock() (unlock func()) {
	addr := &net.UnixAddr{Name: "@peercollab-listen", Net: "unix"}
	deadline := time.Now().Add(listenLockWait)
	for {
		l, err := net.ListenUnix("unix", addr)
		if err == nil {
			return func() { l.Close() }
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return func() {} // no lock: fall back to the unserialised probe
		}
		time.Sleep(listenLockPoll)
	}
}

// listenLockWait bounds the wait for another daemon's start-up; the lock is
// held only while probing and binding ports (milliseconds).
const (
	listenLockWait = 10 * time.Second
	listenLockPoll = 5 * time.Millisecond
)

// errAddrInUse is the error of a bind to a port in use.
var errAddrInUse error = syscall.EADDRINUSE
