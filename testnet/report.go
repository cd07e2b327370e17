package testnet

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Outcomes of a step.
const (
	OutcomeOK       = "ok"
	OutcomeFailed   = "failed"
	OutcomeCanceled = "canceled" // stopped because another step failed or the run was interrupted
	OutcomeNotRun   = "not run"
	// OutcomeWarning marks a teardown that had to kill a node which did not
	// exit on SIGTERM; the run still passes, with a warning.
	OutcomeWarning = "warning"
)

// Report is the outcome of a run, printed by Print and written as JSON by
// WriteFile.
type Report struct {
	Scenario string    `json:"scenario"`
	File     string    `json:"file,omitempty"`
	Run      string    `json:"run"` // the run's prefix of namespace names
	Started  time.Time `json:"started"`
	// DurationMS is the wall time of the whole run, set-up and teardown
	// included.
	DurationMS float64 `json:"duration_ms"`
	OK         bool    `json:"ok"`
	// Error says why the run failed, in one sentence.
	Error string `json:"error,omitempty"`
	// Warnings are trouble that did not fail the run, such as a node that
	// had to be killed at teardown.
	Warnings []string `json:"warnings,omitempty"`
	// Notes are what the run changed on the machine, such as the kernel's
	// neighbour table raised for a crowded subnet.
	Notes    []string     `json:"notes,omitempty"`
	Setup    StepResult   `json:"setup"`
	Steps    []StepResult `json:"steps"`
	Teardown StepResult   `json:"teardown"`
	Nodes    []NodeReport `json:"nodes"`
	// LogDir holds the nodes' logs and recorded events.
	LogDir    string    `json:"log_dir"`
	Resources Resources `json:"resources"`
}

// StepResult is the outcome of one step.
type StepResult struct {
	// Index is the step's place: "3", or "3.2" inside a parallel group.
	Index      string  `json:"index,omitempty"`
	Line       int     `json:"line,omitempty"`
	Name       string  `json:"name"`
	Outcome    string  `json:"outcome"`
	DurationMS float64 `json:"duration_ms"`
	Attempts   int     `json:"attempts,omitempty"`
	// Expected and Observed describe a failed expectation; Error any other
	// failure.
	Expected string `json:"expected,omitempty"`
	Observed string `json:"observed,omitempty"`
	Error    string `json:"error,omitempty"`
	// Output is the last attempt's command output, on failure.
	Output string `json:"output,omitempty"`
	// Logs are the last lines of the logs of the nodes the failed step
	// acted on, by node.
	Logs  map[string][]string `json:"logs,omitempty"`
	Steps []StepResult        `json:"steps,omitempty"`
}

// NodeReport describes a node of the run.
type NodeReport struct {
	Name      string `json:"name"`
	Network   string `json:"network"`
	Role      Role   `json:"role"`
	IP        string `json:"ip"`
	PeerID    string `json:"peer_id"`
	Namespace string `json:"namespace"`
	Home      string `json:"home"`
	Log       string `json:"log"`
	Events    string `json:"events"`
	// PIDs are the processes the node ran, in order, and Started when
	// each started.
	PIDs    []int       `json:"pids"`
	Started []time.Time `json:"started"`
	// CPUSeconds is the processor time its processes used (user and
	// system), and PeakRSS the largest resident memory of one of them, as
	// last sampled.
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSS    int64   `json:"peak_rss_bytes"`
	// Exits lists the times its process exited without being asked.
	Exits []string `json:"unexpected_exits,omitempty"`
}

// Resources are what the run's processes used, sampled from /proc.
type Resources struct {
	// PeakNodesRSS is the largest sum of the node processes' resident
	// memory seen at one sample, in bytes.
	PeakNodesRSS int64 `json:"peak_nodes_rss_bytes"`
	// PeakNodesPSS is the same for the proportional set size, which
	// counts the pages the processes share (the binary) once.
	PeakNodesPSS int64 `json:"peak_nodes_pss_bytes"`
	// RunnerPeakRSS is the harness process's peak resident memory (VmHWM).
	RunnerPeakRSS int64 `json:"runner_peak_rss_bytes"`
	// PeakNodes is how many node processes ran at that peak.
	PeakNodes int `json:"peak_nodes"`
	Samples   int `json:"samples"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteFile writes the report as indented JSON.
func (r *Report) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	return nil
}

// Print writes the report for a person: every step with its outcome and
// duration, and for a failed step what was expected, what was observed and
// the end of the logs of the nodes involved.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "scenario %s", r.Scenario)
	if r.File != "" {
		fmt.Fprintf(w, " (%s)", r.File)
	}
	fmt.Fprintf(w, ", run %s\n", r.Run)
	printStep(w, r.Setup, "")
	for _, s := range r.Steps {
		printStep(w, s, "")
	}
	printStep(w, r.Teardown, "")
	r.PrintSummary(w)
}

// PrintSummary writes the last lines of Print: the verdict, the time and
// memory, and where the logs are.
func (r *Report) PrintSummary(w io.Writer) {
	verdict := "PASS"
	if !r.OK {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s in %s: %d nodes; peak memory of the nodes %s RSS (%s PSS), of the runner %s\n", verdict, fmtMS(r.DurationMS), len(r.Nodes),
		mib(r.Resources.PeakNodesRSS), mib(r.Resources.PeakNodesPSS), mib(r.Resources.RunnerPeakRSS))
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
	for _, note := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", note)
	}
	if r.LogDir != "" {
		fmt.Fprintf(w, "node logs and events: %s\n", r.LogDir)
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func fmtMS(v float64) string {
	d := time.Duration(v * float64(time.Millisecond))
	switch {
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// printStep writes one step (and its sub-steps) on a line of its own, and
// the details of a failure below it.
func printStep(w io.Writer, s StepResult, indent string) {
	label := s.Name
	if s.Index != "" {
		label = s.Index + "  " + s.Name
	}
	extra := ""
	if s.Attempts > 1 {
		extra = fmt.Sprintf("  (%d attempts)", s.Attempts)
	}
	fmt.Fprintf(w, "%s%-8s %9s  %s%s\n", indent, strings.ToUpper(s.Outcome), fmtMS(s.DurationMS), label, extra)
	in := indent + "           "
	if s.Expected != "" {
		fmt.Fprintf(w, "%sexpected: %s\n", in, s.Expected)
		fmt.Fprintf(w, "%sobserved: %s\n", in, s.Observed)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "%serror:    %s\n", in, s.Error)
	}
	if s.Output != "" {
		fmt.Fprintf(w, "%soutput:\n", in)
		for l := range strings.SplitSeq(s.Output, "\n") {
			fmt.Fprintf(w, "%s  | %s\n", in, l)
		}
	}
	for _, node := range slices.Sorted(maps.Keys(s.Logs)) {
		fmt.Fprintf(w, "%slast lines of %s's log:\n", in, node)
		for _, l := range s.Logs[node] {
			fmt.Fprintf(w, "%s  | %s\n", in, l)
		}
	}
	for _, sub := range s.Steps {
		printStep(w, sub, indent+"  ")
	}
}
