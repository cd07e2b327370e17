//go:build linux

// Package nstest runs a test or benchmark inside a network namespace of its
// own, so that it can use mDNS (multicast) without sending a packet off
// this machine. The namespace has only a loopback interface, with the
// multicast flag set so that mDNS (zeroconf) accepts it; everything in the
// test listens on 127.0.0.1.
//
//	func TestX(t *testing.T) {
//		if !nstest.Enter(t) {
//			return // the test ran in a namespace, and its result is ours
//		}
//		... // inside the namespace
//	}
package nstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const envInside = "PEERCOLLAB_NSTEST_INSIDE"

// Enter reports true when the caller runs inside its namespace. Otherwise
// it creates a namespace, runs the same test binary with only tb's test or
// benchmark inside it, forwards its output, fails tb if it failed, deletes
// the namespace, and reports false. Without root or iproute2 it skips tb.
func Enter(tb testing.TB) bool {
	tb.Helper()
	if os.Getenv(envInside) != "" {
		return true
	}
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create a network namespace (mDNS must not leave this machine)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("needs iproute2's ip to create a network namespace")
	}
	name := strings.SplitN(tb.Name(), "/", 2)[0]
	removeOrphans()
	var b [4]byte
	rand.Read(b[:])
	ns := fmt.Sprintf("%s%d-%s", prefix, os.Getpid(), hex.EncodeToString(b[:]))
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", "lo", "multicast", "on"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			exec.Command("ip", "netns", "del", ns).Run()
			tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	defer exec.Command("ip", "netns", "del", ns).Run()

	args := []string{"netns", "exec", ns, os.Args[0], "-test.v"}
	if _, bench := tb.(*testing.B); bench {
		args = append(args, "-test.run=^$", "-test.bench=^"+name+"$", "-test.benchmem")
		for _, f := range []string{"test.benchtime", "test.count", "test.cpu"} {
			if v := flagValue(f); v != "" {
				args = append(args, "-"+f+"="+v)
			}
		}
	} else {
		args = append(args, "-test.run=^"+name+"$")
	}
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), envInside+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	fmt.Fprint(os.Stdout, indent(out.String()))
	if err != nil {
		tb.Fatalf("%s failed inside network namespace %s: %v", name, ns, err)
	}
	return false
}

// prefix starts the names of the namespaces this package makes; the pid of
// the test process that made one follows.
const prefix = "pcnst-"

// removeOrphans deletes the namespaces left by test processes that are gone
// (a test binary killed at its timeout runs no deferred cleanup).
func removeOrphans() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		rest, ok := strings.CutPrefix(f[0], prefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // not ours to judge, or its process still runs
		}
		exec.Command("ip", "netns", "del", f[0]).Run()
	}
}

func flagValue(name string) string {
	for _, a := range os.Args[1:] {
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v
		}
	}
	return ""
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("    [netns] " + l)
		}
	}
	return b.String()
}
