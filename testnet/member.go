package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/peercollab/peercollab/node/localapi/client"
)

// member is a node of a running scenario: its namespace, home and log, the
// process it runs now (if any) and the events recorded from its streams.
type member struct {
	plan    *nodePlan
	home    string
	logPath string
	log     *os.File
	events  *recorder
	id      string // peer ID, known from init

	mu      sync.Mutex
	proc    *proc // the current process; nil when stopped
	starts  int   // how many times it was started
	pids    []int // of every process it ran
	started []time.Time
	exits   []string
	// cpu is the processor time of each process as last sampled, and
	// peakRSS the largest resident memory sampled.
	cpu     map[int]float64
	peakRSS int64
}

// proc is one run of a node's daemon process.
type proc struct {
	cmd     *exec.Cmd
	start   int // which start of the node this is, from 1
	started time.Time
	// done is closed when the process has exited; state says how.
	done  chan struct{}
	state *os.ProcessState
	// stopping is set (under member.mu) once the harness asked the
	// process to exit, so its exit is not unexpected.
	stopping bool
	// cancel ends the event stream; streamDone is closed when its reader
	// has returned.
	cancel     context.CancelFunc
	streamDone chan struct{}
}

// recorded is an event as the harness keeps it.
type recorded struct {
	Node  string          `json:"node"`
	Start int             `json:"start"` // which start of the node it came from
	Seq   uint64          `json:"seq"`
	Time  time.Time       `json:"time"`
	Type  string          `json:"type"`
	Data  json.RawMessage `json:"data"`
}

// recorder keeps a node's events in memory and in a JSON-lines file, and
// wakes waiters on every new one. Safe for concurrent use.
type recorder struct {
	mu   sync.Mutex
	evs  []recorded
	wake chan struct{}
	file *os.File
}

func newRecorder(path string) (*recorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &recorder{wake: make(chan struct{}), file: f}, nil
}

func (r *recorder) add(e recorded) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
	if b, err := json.Marshal(e); err == nil {
		r.file.Write(append(b, '\n'))
	}
	close(r.wake)
	r.wake = make(chan struct{})
}

// snapshot returns the events so far and a channel closed at the next one.
func (r *recorder) snapshot() ([]recorded, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.evs[:len(r.evs):len(r.evs)], r.wake
}

func (r *recorder) close() error { return r.file.Close() }

// client is the node's local-API client.
func (m *member) client() *client.Client { return client.New(m.home) }

// logf writes a harness line into the node's log, between the daemon's own.
func (m *member) logf(format string, args ...any) {
	fmt.Fprintf(m.log, "--- testnet %s: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// account records a sample of process pid's resources.
func (m *member) account(pid int, rss int64, cpu float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cpu == nil {
		m.cpu = map[int]float64{}
	}
	if cpu > 0 {
		m.cpu[pid] = cpu
	}
	m.peakRSS = max(m.peakRSS, rss)
}

// current returns the running process, or nil.
func (m *member) current() *proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// startProc starts the node's process and waits until its local API
// answers with the expected peer ID; then it records the node's events.
// wg tracks the goroutines it leaves running; onExit is called (from the
// process's wait goroutine) when the process exits without being asked.
func (m *member) startProc(ctx context.Context, argv, env []string, wg *sync.WaitGroup, onExit func(msg string)) error {
	// The process is started under m.mu, so that whoever finds it in
	// m.proc (the memory sampler, a stop) finds it with its pid.
	m.mu.Lock()
	if m.proc != nil {
		m.mu.Unlock()
		return fmt.Errorf("%s is already running", m.plan.spec.Name)
	}
	m.starts++
	p := &proc{start: m.starts, done: make(chan struct{}), streamDone: make(chan struct{})}
	m.logf("start %d: %s", p.start, strings.Join(argv, " "))
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout = m.log
	p.cmd.Stderr = m.log
	// Its own process group keeps a terminal's Ctrl-C away from it (the
	// harness stops it in order); Pdeathsig ends it with the harness.
	p.cmd.SysProcAttr = childAttrs(true)
	if err := p.cmd.Start(); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("start %s: %w", m.plan.spec.Name, err)
	}
	p.started = time.Now()
	m.pids = append(m.pids, p.cmd.Process.Pid)
	m.started = append(m.started, p.started)
	m.proc = p
	m.mu.Unlock()
	wg.Go(func() {
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		m.mu.Lock()
		expected := p.stopping
		if m.proc == p {
			m.proc = nil
		}
		msg := fmt.Sprintf("%s's process (pid %d) exited: %s", m.plan.spec.Name, p.cmd.Process.Pid, p.state)
		if !expected {
			msg = fmt.Sprintf("%s's process (pid %d) exited unexpectedly: %s", m.plan.spec.Name, p.cmd.Process.Pid, p.state)
			m.exits = append(m.exits, msg)
		}
		m.mu.Unlock()
		m.logf("%s", msg)
		close(p.done)
		if !expected && onExit != nil {
			onExit(msg)
		}
	})
	if err := m.waitReady(ctx, p); err != nil {
		close(p.streamDone)
		m.stopProc(p, syscall.SIGKILL, StopTimeout)
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	stream, err := m.client().Events(sctx)
	if err != nil {
		cancel()
		close(p.streamDone)
		m.stopProc(p, syscall.SIGKILL, StopTimeout)
		return fmt.Errorf("%s: cannot open its event stream: %v", m.plan.spec.Name, client.Sentence(err))
	}
	wg.Go(func() {
		defer close(p.streamDone)
		defer stream.Close()
		for {
			ev, err := stream.Next(sctx)
			if err != nil {
				if sctx.Err() == nil && !errors.Is(err, io.EOF) {
					m.logf("event stream ended: %v", err)
				}
				return
			}
			m.events.add(recorded{Node: m.plan.spec.Name, Start: p.start, Seq: ev.Seq, Time: ev.Time, Type: ev.Type, Data: ev.Data})
		}
	})
	return nil
}

// waitReady polls the local API until it answers, the process exits or
// ReadyTimeout passes.
func (m *member) waitReady(ctx context.Context, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	c := m.client()
	wait := 10 * time.Millisecond
	var last error
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := c.ID(actx)
		acancel()
		if err == nil {
			if info.PeerID.String() != m.id {
				return fmt.Errorf("%s answers as %s, not as its own peer ID %s; is another daemon using its home?", m.plan.spec.Name, info.PeerID, m.id)
			}
			return nil
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up (%s)", m.plan.spec.Name, p.state)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s did not answer on its local API within %s (last error: %s)", m.plan.spec.Name, ReadyTimeout, client.Sentence(last))
			}
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// stopProc sends sig to the process and waits for it to exit; after grace
// it kills it. It reports an error when the process had to be killed after
// a SIGTERM.
func (m *member) stopProc(p *proc, sig syscall.Signal, grace time.Duration) error {
	m.mu.Lock()
	p.stopping = true
	m.mu.Unlock()
	defer func() {
		if p.cancel != nil {
			p.cancel()
		}
		<-p.streamDone
	}()
	select {
	case <-p.done:
		return nil
	default:
	}
	// Close the event stream first: a daemon's local API waits for open
	// streams (up to 2 s) before it exits.
	if p.cancel != nil {
		p.cancel()
		<-p.streamDone
	}
	m.logf("sending %s to pid %d", sig, p.cmd.Process.Pid)
	p.cmd.Process.Signal(sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	// SIGQUIT first: a Go program prints every goroutine's stack (into the
	// node's log) and exits, which shows where it hung.
	m.logf("pid %d did not exit within %s of %s; sending SIGQUIT for a stack dump", p.cmd.Process.Pid, grace, sig)
	p.cmd.Process.Signal(syscall.SIGQUIT)
	t.Reset(2 * time.Second)
	select {
	case <-p.done:
	case <-t.C:
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	return fmt.Errorf("%s did not exit within %s of %s, so it was killed (its log holds the stack of every goroutine)", m.plan.spec.Name, grace, sig)
}

// tail returns the last n lines of the node's log.
func (m *member) tail(n int) []string {
	return tailFile(m.logPath, n)
}

func tailFile(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 256<<10 {
		f.Seek(st.Size()-256<<10, io.SeekStart)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 4*n {
			lines = append(lines[:0], lines[len(lines)-n:]...)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
