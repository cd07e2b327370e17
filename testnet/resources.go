package testnet

// The memory the nodes of a run use, sampled from /proc.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sample adds up the node processes' memory every 250 ms until stop is
// closed, keeping the peak.
func (r *runner) sample(stop <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		var rssSum, pssSum int64
		n := 0
		for _, m := range r.members {
			if p := m.current(); p != nil {
				pid := p.cmd.Process.Pid
				rss, pss := memory(pid)
				m.account(pid, rss, CPUSeconds(pid))
				rssSum += rss
				pssSum += pss
				n++
			}
		}
		r.mu.Lock()
		r.peak.Samples++
		if rssSum > r.peak.PeakNodesRSS {
			r.peak.PeakNodesRSS, r.peak.PeakNodes = rssSum, n
		}
		r.peak.PeakNodesPSS = max(r.peak.PeakNodesPSS, pssSum)
		r.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// memory returns the resident set size of a process and its proportional
// set size (shared pages divided among the processes that share them, so
// that PSS adds up across processes), in bytes; 0 when unknown.
func memory(pid int) (rss, pss int64) {
	dir := filepath.Join("/proc", fmt.Sprint(pid))
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		rss = statusKB(b, "VmRSS:") * 1024
	}
	if b, err := os.ReadFile(filepath.Join(dir, "smaps_rollup")); err == nil {
		pss = statusKB(b, "Pss:") * 1024
	}
	return rss, pss
}

// CPUSeconds returns the processor time (user and system) process pid used
// so far; 0 when unknown.
func CPUSeconds(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after its closing parenthesis (utime and stime are fields 14 and 15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// clockTicks is the kernel's USER_HZ, 100 on Linux for every architecture
// Go supports.
const clockTicks = 100

// statusKB reads a "Key:   N kB" line of /proc/PID/status.
func statusKB(status []byte, key string) int64 {
	i := bytes.Index(status, []byte(key))
	if i < 0 {
		return 0
	}
	var kb int64
	fmt.Sscanf(string(status[i+len(key):]), "%d", &kb)
	return kb
}
