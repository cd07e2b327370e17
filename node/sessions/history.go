package sessions

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peercollab/peercollab/node/state"
	psession "github.com/peercollab/peercollab/protocols/session"
)

// history is what was delivered in a session here, oldest first, within
// the service's Retention. Its zero value is empty.
type history struct {
	msgs  []delivered
	bytes int64
	// index is the index of the last message delivered (kept when the
	// message itself is dropped).
	index uint64
}

// delivered is a message delivered here: as the application sees it, and
// as it travelled.
type delivered struct {
	Message
	data *psession.Data
	size int64
}

// record is a delivered message as stored, under historyKey.
type record struct {
	Time time.Time     `json:"time"`
	Data psession.Data `json:"data"`
}

// recordOverhead is roughly what a stored record costs beyond its sealed
// text and signature.
const recordOverhead = 160

// historyKey is where message index of session sid is stored: the index in
// fixed-width hex, so that a session's records are in order.
func historyKey(sid string, index uint64) string { return fmt.Sprintf("%s/%016x", sid, index) }

// parseHistoryKey reads a historyKey.
func parseHistoryKey(key string) (sid string, index uint64, ok bool) {
	sid, hex, ok := strings.Cut(key, "/")
	if !ok || len(hex) != 16 || !psession.ValidTag(sid) {
		return "", 0, false
	}
	index, err := strconv.ParseUint(hex, 16, 64)
	return sid, index, err == nil && index > 0
}

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

// add appends a delivered message and drops the oldest beyond keep; the
// records of the dropped are deleted in b.
func (h *history) add(d delivered, keep Retention, b *state.Batch) {
	h.msgs = append(h.msgs, d)
	h.bytes += d.size
	drop := 0
	for len(h.msgs)-drop > 1 && (len(h.msgs)-drop > keep.Messages || h.bytes > keep.Bytes) {
		old := h.msgs[drop]
		h.bytes -= old.size
		b.Delete(historyBucket, historyKey(old.Session, old.Index))
		drop++
	}
	if drop > 0 {
		clear(h.msgs[:drop])
		h.msgs = h.msgs[drop:]
	}
}

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
// stores them in the history in one write, and then publishes them. The
// history records say how far the session came (see restoreProgress); the
// progress record is written with them only when they do not: when old
// records are dropped, and after a skip.
func (x *sess) deliverLocked(ds []*psession.Data, own *psession.Data, payload []byte) []Message {
	if len(ds) == 0 {
		return nil
	}
	var b state.Batch
	stale := x.progressStale
	now := time.Now().UTC()
	out := make([]Message, 0, len(ds))
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
		b.Put(historyBucket, historyKey(x.id, m.Index), record{Time: now, Data: *d})
		x.hist.add(delivered{Message: m, data: d, size: sizeOf(d)}, x.s.keep, &b)
		out = append(out, m)
	}
	if stale || b.Len() > len(out) { // a skip before, or records dropped
		b.Put(progressBucket, x.id, x.progressLocked())
		x.progressStale = false
	}
	if err := x.s.cfg.State.Write(&b); err != nil {
		log.Errorw("store session messages", "session", x.id, "error", err)
	}
	for _, m := range out {
		x.s.cfg.Hub.Publish(EvtMessage, m)
	}
	return out
}

// load reads the stored sessions, their progress and their history. A
// record that cannot be read is left out (and said so), not allowed to
// keep the node from starting; history records of sessions that are gone,
// damaged, or beyond the retention are deleted.
func (s *Service) load() ([]*sess, error) {
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
	byID := make(map[string]*sess, len(sts))
	out := make([]*sess, 0, len(sts))
	for _, st := range sts {
		x := restore(s, st, progresses[st.ID])
		byID[x.id] = x
		out = append(out, x)
	}
	var b state.Batch
	err = s.cfg.State.ForEach(historyBucket, func(key string, raw []byte) error {
		sid, index, ok := parseHistoryKey(key)
		x := byID[sid]
		if !ok || x == nil {
			b.Delete(historyBucket, key)
			return nil
		}
		var r record
		if err := json.Unmarshal(raw, &r); err != nil || x.restoreMessage(index, r, &b) != nil {
			log.Errorw("a stored session message cannot be read; it is left out", "session", sid, "index", index, "error", err)
			b.Delete(historyBucket, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load session history: %w", err)
	}
	for _, x := range out {
		x.restoreProgress()
	}
	if err := s.cfg.State.Write(&b); err != nil {
		log.Errorw("remove session history beyond the retention", "error", err)
	}
	return out, nil
}

// restoreProgress takes from the history how far the session came beyond
// its progress record: each sender's position past its last message kept,
// this node's last number, the last index. Called before the session runs.
func (x *sess) restoreProgress() {
	for _, d := range x.hist.msgs {
		x.order.Start(d.Sender, d.Seq+1)
		if d.Sender == x.me {
			x.mySeq = max(x.mySeq, d.Seq)
		}
	}
}

// errBadMessage means a stored message does not hold together.
var errBadMessage = fmt.Errorf("%w: message", errBadRecord)

// restoreMessage takes back the stored message index (records come in
// order of their index); the records it drops to keep within the
// retention are deleted in b. It is called before the session runs.
func (x *sess) restoreMessage(index uint64, r record, b *state.Batch) error {
	d := r.Data
	if psession.CheckData(x.id, &d) != nil || (len(x.hist.msgs) > 0 && index <= x.hist.msgs[len(x.hist.msgs)-1].Index) {
		return errBadMessage
	}
	payload, err := psession.Open(x.keys[d.Epoch], &d)
	if err != nil {
		return err
	}
	x.hist.index = max(x.hist.index, index)
	x.hist.add(delivered{Message: Message{Session: x.id, Sender: d.Sender, Seq: d.Seq, Data: payload, Time: r.Time, Index: index},
		data: &d, size: sizeOf(&d)}, x.s.keep, b)
	x.keepLocked(&d)
	return nil
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
