package localapi

import "golang.org/x/sys/unix"

// clockSynchronized tells whether the kernel considers the system clock
// synchronized (adjtimex's state is not TIME_ERROR and STA_UNSYNC is
// clear), as timedatectl's "System clock synchronized" does.
func clockSynchronized() (synced, known bool) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0, true
}
