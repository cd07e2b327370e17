package testnet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// steps runs the scenario's steps in order until one fails. It returns
// every step's result (those after a failure as not run) and, on failure,
// a sentence saying which step failed and why.
func (r *runner) steps(ctx context.Context, steps []*Step) ([]StepResult, string) {
	var results []StepResult
	failure := ""
	for i, st := range steps {
		idx := strconv.Itoa(i + 1)
		if failure != "" {
			results = append(results, StepResult{Index: idx, Line: st.Line, Name: st.label(), Outcome: OutcomeNotRun})
			continue
		}
		res := r.step(ctx, st, idx)
		r.mu.Lock()
		exits := slices.Clone(r.unexpected)
		r.unexpected = nil
		r.mu.Unlock()
		if res.Outcome == OutcomeOK && len(exits) > 0 {
			res.Outcome = OutcomeFailed
			res.Error = strings.Join(exits, "; ")
			var names []string
			for _, m := range r.members {
				if slices.ContainsFunc(exits, func(e string) bool { return strings.HasPrefix(e, m.plan.spec.Name+"'s ") }) {
					names = append(names, m.plan.spec.Name)
				}
			}
			res.Logs = r.tails(names)
		}
		r.progress(res)
		results = append(results, res)
		if res.Outcome != OutcomeOK {
			failure = fmt.Sprintf("step %s (line %d, %s) %s", idx, st.Line, st.label(), res.summary())
		}
	}
	return results, failure
}

// summary says in a few words how a failed step failed.
func (s StepResult) summary() string {
	if s.Outcome == OutcomeCanceled {
		return "was cut short: " + s.Error
	}
	if s.Expected != "" {
		return fmt.Sprintf("failed: expected %s, observed %s", s.Expected, short(s.Observed, 200))
	}
	if s.Error != "" {
		return "failed: " + s.Error
	}
	for _, sub := range s.Steps {
		if sub.Outcome == OutcomeFailed {
			return fmt.Sprintf("failed at %s (%s): %s", sub.Index, sub.Name, strings.TrimPrefix(sub.summary(), "failed: "))
		}
	}
	return "failed"
}

// label is how the report names a step.
func (st *Step) label() string {
	if st.Name != "" {
		return st.Name
	}
	nodes := strings.Join(st.Nodes, ", ")
	switch st.Kind {
	case StepRun:
		return nodes + ": peercollab " + strings.Join(st.Args, " ") + st.withinLabel()
	case StepShell:
		return nodes + ": sh -c " + strconvQuote(st.Shell) + st.withinLabel()
	case StepEvent:
		s := nodes + ": event " + st.Event
		for _, c := range st.JSON {
			s += fmt.Sprintf(", %s %s %s", c.Path, c.Op, short(jsonText(c.Value), 60))
		}
		return s + st.withinLabel()
	case StepCut, StepHeal:
		return string(st.Kind) + " the link of " + st.Link
	case StepNetem:
		if st.Netem == (Netem{}) {
			return "netem: clear the link of " + st.Link
		}
		return fmt.Sprintf("netem on the link of %s: delay %s jitter %s loss %g%%", st.Link, st.Netem.Delay, st.Netem.Jitter, st.Netem.Loss)
	case StepParallel:
		return fmt.Sprintf("parallel (%d steps)", len(st.Steps))
	case StepMove:
		return "move " + nodes + " to network " + st.To
	}
	return string(st.Kind) + " " + nodes
}

func (st *Step) withinLabel() string {
	if st.Within > 0 {
		return " (within " + st.Within.String() + ")"
	}
	return ""
}

// step runs one step and says how it went.
func (r *runner) step(ctx context.Context, st *Step, idx string) StepResult {
	start := time.Now()
	res := StepResult{Index: idx, Line: st.Line, Name: st.label(), Outcome: OutcomeOK}
	switch {
	case st.Kind == StepParallel:
		res.Steps = r.parallel(ctx, st.Steps, idx)
	case len(st.Nodes) > 1 && (st.Kind == StepRun || st.Kind == StepShell || st.Kind == StepEvent):
		// The same step on several nodes: one sub-step each, at once.
		var subs []*Step
		for _, n := range st.Nodes {
			sub := *st
			sub.Nodes = []string{n}
			sub.Name = ""
			subs = append(subs, &sub)
		}
		res.Steps = r.parallel(ctx, subs, idx)
	default:
		r.single(ctx, st, &res, start)
	}
	for _, sub := range res.Steps {
		switch {
		case sub.Outcome == OutcomeFailed:
			res.Outcome = OutcomeFailed
		case sub.Outcome == OutcomeCanceled && res.Outcome == OutcomeOK:
			res.Outcome = OutcomeCanceled
		}
	}
	if ctx.Err() != nil && res.Outcome != OutcomeOK && res.Error == "" && res.Expected == "" {
		res.Outcome = OutcomeCanceled
		res.Error = r.interrupted(ctx, ctx.Err()).Error()
	}
	res.DurationMS = ms(time.Since(start))
	return res
}

// parallel runs steps at once; the first failure cancels the others.
func (r *runner) parallel(ctx context.Context, steps []*Step, idx string) []StepResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]StepResult, len(steps))
	var wg sync.WaitGroup
	for i, st := range steps {
		wg.Go(func() {
			out[i] = r.step(ctx, st, fmt.Sprintf("%s.%d", idx, i+1))
			if out[i].Outcome == OutcomeFailed {
				cancel()
			}
		})
	}
	wg.Wait()
	for i := range out {
		if out[i].Outcome == OutcomeCanceled && ctx.Err() != nil {
			out[i].Error = "a step beside it failed"
		}
	}
	return out
}

// single runs a step that is not a group, filling res.
func (r *runner) single(ctx context.Context, st *Step, res *StepResult, start time.Time) {
	fail := func(err error) {
		if err != nil {
			res.Outcome = OutcomeFailed
			res.Error = err.Error()
		}
	}
	switch st.Kind {
	case StepRun, StepShell:
		r.command(ctx, st, r.byName[st.Nodes[0]], res)
	case StepEvent:
		r.event(ctx, st, r.byName[st.Nodes[0]], res, start)
	case StepStart, StepStop, StepKill, StepRestart:
		var ms []*member
		for _, n := range st.Nodes {
			ms = append(ms, r.byName[n])
		}
		fail(r.each(ms, 0, func(m *member) error { return r.lifecycle(ctx, st.Kind, m) }))
	case StepCut, StepHeal:
		fail(r.net.setLink(ctx, st.Link, st.Kind == StepHeal))
	case StepNetem:
		fail(r.net.netem(ctx, st.Link, st.Netem))
	case StepMove:
		m := r.byName[st.Nodes[0]]
		if m.current() != nil {
			fail(fmt.Errorf("move: %s is running; stop it first", st.Nodes[0]))
			break
		}
		if err := r.net.move(ctx, st.Nodes[0], st.To); err != nil {
			fail(err)
			break
		}
		m.logf("moved to network %s, address %s", st.To, m.plan.ip)
	}
	if res.Outcome == OutcomeFailed && res.Logs == nil {
		names := st.Nodes
		if st.Link != "" {
			names = []string{st.Link}
		}
		res.Logs = r.tails(names)
	}
}

// lifecycle starts, stops, kills or restarts a node.
func (r *runner) lifecycle(ctx context.Context, kind StepKind, m *member) error {
	stop := func(sig syscall.Signal) error {
		p := m.current()
		if p == nil {
			return fmt.Errorf("%s is not running", m.plan.spec.Name)
		}
		return m.stopProc(p, sig, StopTimeout)
	}
	switch kind {
	case StepStart:
		return r.start(ctx, m)
	case StepStop:
		return stop(syscall.SIGTERM)
	case StepKill:
		return stop(syscall.SIGKILL)
	case StepRestart:
		if err := stop(syscall.SIGTERM); err != nil {
			return err
		}
		return r.start(ctx, m)
	}
	return nil
}

// command runs a run or sh step: once, or until it matches within its
// deadline.
func (r *runner) command(ctx context.Context, st *Step, m *member, res *StepResult) {
	look := r.lookup(m.plan.spec.Name)
	var argv []string
	env := r.env()
	if st.Kind == StepRun {
		argv = []string{"ip", "netns", "exec", m.plan.ns, r.opts.Binary, "--home", m.home}
		for _, a := range st.Args {
			a, err := expand(a, look)
			if err != nil {
				res.Outcome, res.Error = OutcomeFailed, err.Error()
				return
			}
			argv = append(argv, a)
		}
	} else {
		sh, err := expand(st.Shell, look)
		if err != nil {
			res.Outcome, res.Error = OutcomeFailed, err.Error()
			return
		}
		argv = []string{"ip", "netns", "exec", m.plan.ns, "sh", "-c", sh}
		env = r.env("PEERCOLLAB_HOME=" + m.home)
	}
	conds, err := r.expandConditions(st.JSON, look)
	if err != nil {
		res.Outcome, res.Error = OutcomeFailed, err.Error()
		return
	}
	stdoutWant, err1 := expand(st.Stdout, look)
	stderrWant, err2 := expand(st.Stderr, look)
	if err := errors.Join(err1, err2); err != nil {
		res.Outcome, res.Error = OutcomeFailed, err.Error()
		return
	}

	within := st.Within
	if within == 0 {
		within = DefaultCommandTimeout
	}
	deadline := time.Now().Add(within)
	wait := 50 * time.Millisecond
	var last *mismatch
	var lastRes cmdResult
	for {
		res.Attempts++
		cr := r.exec(ctx, env, time.Until(deadline), argv...)
		mm := evaluate(st, cr, stdoutWant, stderrWant, conds)
		if mm == nil {
			return
		}
		// An attempt cut short by the deadline says less than the one
		// before it.
		if cr.err == nil || last == nil {
			last, lastRes = mm, cr
		}
		if st.Within == 0 || ctx.Err() != nil || time.Until(deadline) <= wait {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
	res.Outcome = OutcomeFailed
	if ctx.Err() != nil && last.Observed == "the command was stopped" {
		res.Outcome = OutcomeCanceled
		res.Error = r.interrupted(ctx, ctx.Err()).Error()
		return
	}
	res.Expected, res.Observed = last.Expected, last.Observed
	if st.Within > 0 {
		res.Expected += " within " + st.Within.String()
	}
	res.Output = lastRes.output()
}

func (r *runner) expandConditions(conds []Condition, look func(string, string) (string, error)) ([]Condition, error) {
	out := slices.Clone(conds)
	for i := range out {
		var err error
		if out[i].Path, err = expand(out[i].Path, look); err != nil {
			return nil, err
		}
		if s, ok := out[i].Value.(string); ok {
			if out[i].Value, err = expand(s, look); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// evaluate checks a command's result against a step's expectations, in
// order: exit status, stdout, stderr, JSON.
func evaluate(st *Step, cr cmdResult, stdoutWant, stderrWant string, conds []Condition) *mismatch {
	if cr.err != nil {
		return &mismatch{Expected: "the command to finish", Observed: cr.err.Error()}
	}
	switch {
	case st.Status == AnyNonzero && cr.status == 0:
		return &mismatch{Expected: "a non-zero exit status", Observed: "exit status 0"}
	case st.Status != AnyNonzero && cr.status != int(st.Status):
		return &mismatch{Expected: fmt.Sprintf("exit status %d", st.Status), Observed: cr.describe()}
	}
	if stdoutWant != "" && !strings.Contains(string(cr.stdout), stdoutWant) {
		return &mismatch{Expected: "stdout containing " + strconvQuote(stdoutWant), Observed: strconvQuote(short(string(cr.stdout), 300))}
	}
	if stderrWant != "" && !strings.Contains(string(cr.stderr), stderrWant) {
		return &mismatch{Expected: "stderr containing " + strconvQuote(stderrWant), Observed: strconvQuote(short(string(cr.stderr), 300))}
	}
	if len(conds) == 0 {
		return nil
	}
	doc, lines, err := jsonDoc(cr.stdout)
	if err != nil {
		return &mismatch{Expected: conds[0].describe(), Observed: err.Error()}
	}
	return checkAll(doc, lines, conds)
}

// event waits for enough matching events in a node's stream.
func (r *runner) event(ctx context.Context, st *Step, m *member, res *StepResult, stepStart time.Time) {
	conds, err := r.expandConditions(st.JSON, r.lookup(m.plan.spec.Name))
	if err != nil {
		res.Outcome, res.Error = OutcomeFailed, err.Error()
		return
	}
	within := st.Within
	if within == 0 {
		within = DefaultEventWithin
	}
	m.mu.Lock()
	startNo := m.starts
	m.mu.Unlock()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		evs, wake := m.events.snapshot()
		matched, typed := 0, 0
		var last *mismatch
		var seen []string
		for _, e := range evs {
			if st.SinceStart {
				if e.Start != startNo {
					continue
				}
			} else if e.Time.Before(stepStart) {
				continue
			}
			seen = append(seen, e.Type)
			if e.Type != st.Event {
				continue
			}
			typed++
			if mm := checkAll(e.Data, false, conds); mm != nil {
				last = mm
				continue
			}
			matched++
		}
		if matched >= st.Count {
			return
		}
		select {
		case <-wake:
			continue
		case <-ctx.Done():
			res.Outcome = OutcomeCanceled
			res.Error = r.interrupted(ctx, ctx.Err()).Error()
			return
		case <-timer.C:
		}
		res.Outcome = OutcomeFailed
		since := "since the step began"
		if st.SinceStart {
			since = "since the node started"
		}
		res.Expected = fmt.Sprintf("%d %s event(s)", st.Count, st.Event)
		for _, c := range conds {
			res.Expected += " with " + c.describe()
		}
		res.Expected += " within " + within.String()
		switch {
		case typed == 0:
			res.Observed = fmt.Sprintf("no %s event %s; it saw %s", st.Event, since, eventCounts(seen))
		case last != nil:
			res.Observed = fmt.Sprintf("%d matching of %d %s events %s; the last one that did not match had %s at %s", matched, typed, st.Event, since, last.Observed, strings.TrimPrefix(last.Expected, "json "))
		default:
			res.Observed = fmt.Sprintf("%d matching %s events %s", matched, st.Event, since)
		}
		return
	}
}

// eventCounts summarises event types: "3 contact.changed, 1 me.changed".
func eventCounts(types []string) string {
	if len(types) == 0 {
		return "no events at all"
	}
	counts := map[string]int{}
	var order []string
	for _, t := range types {
		if counts[t] == 0 {
			order = append(order, t)
		}
		counts[t]++
	}
	var parts []string
	for _, t := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[t], t))
	}
	return strings.Join(parts, ", ")
}
