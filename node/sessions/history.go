package sessions

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	psession "github.com/peercollab/peercollab/protocols/session"
)

// A session's history is kept in a log file of its own in Config.Dir,
// SID.log: every message delivered here, appended (one write for the
// messages one delivery hands over) before the application hears of them.
// An append costs one write(2) of a few hundred bytes, where a database
// rewrites a page or more per message. Each record is framed: its length
// (uvarint), a CRC-32C of its body, and the body (a logRecord in JSON). A
// log cut short or damaged is read up to its last whole record and cut
// there. Records dropped to keep within the Retention stay in the file
// until there are logSlack of them; then the file is rewritten with the
// records kept (to SID.log.tmp, synced, renamed over the log), after the
// progress record that says what they said. Appends reach the disk within
// a tick of the session's (repairEvery) or at Close; a crash of the
// machine may lose the last moments, as with the relaxed database.

// logRecord is a delivered message as its log holds it.
type logRecord struct {
	Index uint64        `json:"index"`
	Time  time.Time     `json:"time"`
	Data  psession.Data `json:"data"`
}

const (
	// maxLogRecord caps a log record's body: the largest message, sealed
	// and signed, in JSON (base64), and the rest.
	maxLogRecord = 2*psession.MaxDataSize + 4<<10
	// logSlack is how many dropped records a log may hold before it is
	// rewritten (at least; a quarter of the retention for large ones).
	logSlack = 256
	logExt   = ".log"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadLog means a log record does not hold together.
var errBadLog = errors.New("sessions: damaged history record")

// appendRecord frames r onto b.
func appendRecord(b []byte, r logRecord) []byte {
	body, _ := json.Marshal(r)
	b = binary.AppendUvarint(b, uint64(len(body)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, castagnoli))
	return append(b, body...)
}

// readRecords reads the whole records at the start of raw, and how many
// bytes they take; what follows them (nothing, or a damaged or partial
// record) is left.
func readRecords(raw []byte) (recs []logRecord, good int, err error) {
	for good < len(raw) {
		rest := raw[good:]
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > maxLogRecord || uint64(len(rest)-w) < 4+n {
			return recs, good, errBadLog
		}
		sum, body := binary.BigEndian.Uint32(rest[w:]), rest[w+4:w+4+int(n)]
		var r logRecord
		if crc32.Checksum(body, castagnoli) != sum || json.Unmarshal(body, &r) != nil {
			return recs, good, errBadLog
		}
		recs = append(recs, r)
		good += w + 4 + int(n)
	}
	return recs, good, nil
}

// history is what was delivered in a session here, oldest first, within
// the service's Retention, and the log that holds it. Its zero value is
// empty.
type history struct {
	msgs  []delivered
	bytes int64
	// index is the index of the last message delivered (kept when the
	// message itself is dropped).
	index uint64
	// file is the log opened for appending (nil until the first append);
	// dirty says it holds appends not synced yet.
	file  *os.File
	dirty bool
	// dropped counts the records of the log no longer kept.
	dropped int
}

// delivered is a message delivered here: as the application sees it, and
// as it travelled.
type delivered struct {
	Message
	data *psession.Data
	size int64
}

// recordOverhead is roughly what a record costs in the log beyond its
// sealed text and signature.
const recordOverhead = 160

func sizeOf(d *psession.Data) int64 { return int64(len(d.Sealed)+len(d.Signature)) + recordOverhead }

// after returns the messages after index i.
func (h *history) after(i uint64) []Message {
	at, _ := slices.BinarySearchFunc(h.msgs, i+1, func(d delivered, idx uint64) int { return cmp.Compare(d.Index, idx) })
	out := make([]Message, 0, len(h.msgs)-at)
	for _, d := range h.msgs[at:] {
		out = append(out, d.Message)
	}
	return out
}

// add appends a delivered message and drops the oldest beyond keep (at
// least one stays).
func (h *history) add(d delivered, keep Retention) {
	h.msgs = append(h.msgs, d)
	h.bytes += d.size
	drop := 0
	for len(h.msgs)-drop > 1 && (len(h.msgs)-drop > keep.Messages || h.bytes > keep.Bytes) {
		h.bytes -= h.msgs[drop].size
		drop++
	}
	if drop > 0 {
		clear(h.msgs[:drop])
		h.msgs = h.msgs[drop:]
		h.dropped += drop
	}
}

// logPath is where session sid's log is.
func (s *Service) logPath(sid string) string { return filepath.Join(s.cfg.Dir, sid+logExt) }

// keepLocked adds a message to the repair log, trimming the oldest; it
// reports whether the message was new.
func (x *sess) keepLocked(d *psession.Data) bool {
	if x.log[d.Sender] == nil {
		x.log[d.Sender] = map[uint64]*psession.Data{}
	}
	if _, ok := x.log[d.Sender][d.Seq]; ok {
		return false
	}
	x.log[d.Sender][d.Seq] = d
	x.logged = append(x.logged, logEntry{d.Sender, d.Seq})
	if d.Seq > x.highest[d.Sender] {
		x.highest[d.Sender] = d.Seq
	}
	if over := len(x.logged) - x.s.keep.Messages; over > 0 {
		for _, old := range x.logged[:over] {
			delete(x.log[old.sender], old.seq)
		}
		x.logged = slices.Delete(x.logged, 0, over)
	}
	return true
}

// deliverLocked hands messages now in order to the application: it opens
// them (but own, this node's own message, whose payload it is given),
// appends them to the session's log in one write, and then publishes them.
// The log's records say how far the session came (see restoreProgress);
// the progress record is written only where they cannot (see
// saveProgressLocked).
func (x *sess) deliverLocked(ds []*psession.Data, own *psession.Data, payload []byte) []Message {
	if len(ds) == 0 {
		return nil
	}
	now := time.Now().UTC()
	out := make([]Message, 0, len(ds))
	var frames []byte
	for _, d := range ds {
		p := payload
		if d != own {
			var err error
			if p, err = psession.Open(x.keys[d.Epoch], d); err != nil {
				log.Debugw("message cannot be opened", "session", x.id, "error", err)
				continue
			}
		}
		x.hist.index++
		m := Message{Session: x.id, Sender: d.Sender, Seq: d.Seq, Data: p, Time: now, Index: x.hist.index}
		frames = appendRecord(frames, logRecord{Index: m.Index, Time: now, Data: *d})
		x.hist.add(delivered{Message: m, data: d, size: sizeOf(d)}, x.s.keep)
		out = append(out, m)
	}
	if err := x.appendLocked(frames); err != nil {
		log.Errorw("store session messages", "session", x.id, "error", err)
	}
	if x.hist.dropped >= max(logSlack, x.s.keep.Messages/4) {
		x.compactLocked()
	}
	x.saveProgressLocked()
	for _, m := range out {
		x.s.cfg.Hub.Publish(EvtMessage, m)
	}
	return out
}

// appendLocked appends frames to the session's log.
func (x *sess) appendLocked(frames []byte) error {
	if len(frames) == 0 {
		return nil
	}
	if x.hist.file == nil {
		f, err := os.OpenFile(x.s.logPath(x.id), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		x.hist.file = f
	}
	x.hist.dirty = true
	_, err := x.hist.file.Write(frames)
	return err
}

// compactLocked rewrites the session's log with the records kept, after
// storing the progress that the dropped ones said.
func (x *sess) compactLocked() {
	x.progressStale = true
	x.saveProgressLocked()
	if x.progressStale {
		return // the dropped records are the only account: keep them
	}
	var frames []byte
	for _, d := range x.hist.msgs {
		frames = appendRecord(frames, logRecord{Index: d.Index, Time: d.Time, Data: *d.data})
	}
	path := x.s.logPath(x.id)
	if err := writeSynced(path+".tmp", frames); err != nil {
		log.Errorw("rewrite a session's history", "session", x.id, "error", err)
		return
	}
	x.closeLogLocked()
	if err := os.Rename(path+".tmp", path); err != nil {
		log.Errorw("rewrite a session's history", "session", x.id, "error", err)
		return
	}
	x.hist.dropped = 0
}

// writeSynced writes a file and syncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncLog puts the session's appends on the disk. It takes the lock only
// to look, not while the disk works.
func (x *sess) syncLog() {
	x.mu.Lock()
	f, dirty := x.hist.file, x.hist.dirty
	x.hist.dirty = false
	x.mu.Unlock()
	if dirty && f != nil {
		if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			log.Errorw("sync a session's history", "session", x.id, "error", err)
		}
	}
}

// closeLogLocked syncs and closes the session's log.
func (x *sess) closeLogLocked() {
	if f := x.hist.file; f != nil {
		if x.hist.dirty {
			f.Sync()
		}
		f.Close()
		x.hist.file, x.hist.dirty = nil, false
	}
}

// saveProgressLocked stores the progress record when it is stale.
func (x *sess) saveProgressLocked() {
	if !x.progressStale {
		return
	}
	if err := x.s.cfg.State.Put(progressBucket, x.id, x.progressLocked()); err != nil {
		log.Errorw("store session progress", "session", x.id, "error", err)
		return
	}
	x.progressStale = false
}

// load reads the stored sessions, their progress and their history. A
// record that cannot be read is left out (and said so), not allowed to
// keep the node from starting; logs of sessions that are gone are removed.
func (s *Service) load() ([]*sess, error) {
	if s.cfg.Dir == "" {
		return nil, errors.New("sessions: no directory for the history")
	}
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("history directory: %w", err)
	}
	var sts []stored
	err := s.cfg.State.ForEach(bucket, func(key string, raw []byte) error {
		st, err := decodeStored(raw)
		if err != nil || st.ID != key {
			log.Errorw("a stored session cannot be read; it is left out", "session", key, "error", err)
			return nil
		}
		sts = append(sts, st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load sessions: %w", err)
	}
	progresses := map[string]progress{}
	err = s.cfg.State.ForEach(progressBucket, func(id string, raw []byte) error {
		pr, err := decodeProgress(raw)
		if err != nil {
			log.Errorw("a session's stored progress cannot be read; it starts over", "session", id, "error", err)
			return nil
		}
		progresses[id] = pr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load session progress: %w", err)
	}
	out := make([]*sess, 0, len(sts))
	known := map[string]bool{}
	for _, st := range sts {
		x := restore(s, st, progresses[st.ID])
		if err := x.loadLog(); err != nil {
			return nil, err
		}
		known[x.id+logExt] = true
		out = append(out, x)
	}
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("history directory: %w", err)
	}
	for _, e := range entries {
		if name := e.Name(); !known[name] && (strings.HasSuffix(name, logExt) || strings.HasSuffix(name, logExt+".tmp")) {
			if err := os.Remove(filepath.Join(s.cfg.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Errorw("remove the history of a session that is gone", "file", name, "error", err)
			}
		}
	}
	return out, nil
}

// loadLog reads the session's log: the records that hold together, in
// order of index, within the retention; a damaged end is cut off, and a
// log holding records it does not keep is rewritten. It then takes from
// the records how far the session came. Called before the session runs.
func (x *sess) loadLog() error {
	path := x.s.logPath(x.id)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the history of session %s: %w", x.id, err)
	}
	recs, good, err := readRecords(raw)
	if err != nil {
		log.Warnw("a session's history ends damaged; it is cut there", "session", x.id, "kept bytes", good, "of", len(raw))
		if err := os.Truncate(path, int64(good)); err != nil {
			return fmt.Errorf("cut the history of session %s: %w", x.id, err)
		}
	}
	for _, r := range recs {
		if err := x.restoreMessage(r); err != nil {
			log.Errorw("a stored session message cannot be read; it is left out", "session", x.id, "index", r.Index, "error", err)
			x.hist.dropped++
		}
	}
	x.restoreProgress()
	if x.hist.dropped > 0 {
		x.compactLocked()
	}
	return nil
}

// errBadMessage means a stored message does not hold together.
var errBadMessage = fmt.Errorf("%w: message", errBadRecord)

// restoreMessage takes back a stored message (records come in order of
// their index).
func (x *sess) restoreMessage(r logRecord) error {
	d := r.Data
	if r.Index == 0 || psession.CheckData(x.id, &d) != nil || (len(x.hist.msgs) > 0 && r.Index <= x.hist.msgs[len(x.hist.msgs)-1].Index) {
		return errBadMessage
	}
	payload, err := psession.Open(x.keys[d.Epoch], &d)
	if err != nil {
		return err
	}
	x.hist.index = max(x.hist.index, r.Index)
	x.hist.add(delivered{Message: Message{Session: x.id, Sender: d.Sender, Seq: d.Seq, Data: payload, Time: r.Time, Index: r.Index},
		data: &d, size: sizeOf(&d)}, x.s.keep)
	x.keepLocked(&d)
	return nil
}

// restoreProgress takes from the history how far the session came beyond
// its progress record: each sender's position past its last message kept,
// and this node's last number.
func (x *sess) restoreProgress() {
	for _, d := range x.hist.msgs {
		x.order.Start(d.Sender, d.Seq+1)
		if d.Sender == x.me {
			x.mySeq = max(x.mySeq, d.Seq)
		}
	}
}
