package testnet

// The memory the nodes of a run use, sampled from /proc.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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
				rss, pss := memory(p.cmd.Process.Pid)
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
