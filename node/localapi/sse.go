package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/internal/sentence"
)

// keepAlive is how often an idle event stream sends a comment line, so that
// dead clients are noticed and proxies keep the stream open.
const keepAlive = 15 * time.Second

// eventWriteTimeout bounds writing one event (or keep-alive) to the client:
// a subscriber that stops reading is cut off after it.
const eventWriteTimeout = 30 * time.Second

// encodeEvent encodes a node event as an apitype.Event. An event whose
// payload the contract does not know is logged and left out.
func encodeEvent(ev events.Event) ([]byte, bool) {
	payload, ok := eventData(ev.Data)
	if !ok {
		log.Errorw("event with no API type left out", "type", ev.Type, "payload", fmt.Sprintf("%T", ev.Data))
		return nil, false
	}
	data, err := json.Marshal(payload)
	if err == nil {
		data, err = json.Marshal(apitype.Event{Seq: ev.Seq, Time: ev.Time, Type: ev.Type, Data: data})
	}
	if err != nil {
		log.Errorw("encode event", "type", ev.Type, "error", err)
		return nil, false
	}
	return data, true
}

// eventHistory is how many of the latest events the server keeps for
// streams that resume with Last-Event-ID; streamBuffer how many events a
// stream may fall behind before it is cut off (it may then resume).
const (
	eventHistory = 1024
	streamBuffer = 1024
)

// eventsDescription documents GET /v1/events in the OpenAPI document.
const eventsDescription = `Server-sent events: each event is an "id:" line (its sequence number), an "event:" line (its type) and a "data:" line holding an Event as JSON, whose data field is the payload of its type (see the Event schema and x-event-types). Comment lines (": keep-alive") come every 15 s while nothing happens.

Resuming: a client that reconnects with the Last-Event-ID header (or the last_event_id parameter) set to the id of the last event it read gets every event after it that the daemon still keeps (the latest 1024), then the live ones. Where events it asks for are no longer kept, it first gets one "events.lost" event (no id, seq 0) that says which sequence numbers are gone (reason past-history), then the kept ones and the live ones. Sequence numbers start at 1 each time the daemon starts; a Last-Event-ID newer than the daemon's last event gets an "events.lost" event with reason restarted and to 0, then every kept event.

Filtering: ?types=session.,invitation.changed sends only the events whose type equals one of the given names or starts with one; "events.lost" is always sent.

A stream that falls more than 1024 events behind is cut off with an "error" event whose data is an ErrorBody (code events_overflow); reconnect with Last-Event-ID to get what it missed.`

// relayEvents relays the node's events from sub into the server's hub
// until Close. A subscription the node cut off (it fell behind, which the
// relay should not) is replaced; the hub marks the events it missed as
// lost.
func (s *Server) relayEvents(sub *events.Sub) {
	defer func() { sub.Close() }()
	for {
		ev, err := sub.Next(s.streams)
		switch {
		case err == nil:
			s.hub.Relay(ev)
		case errors.Is(err, events.ErrOverflow) && s.streams.Err() == nil:
			log.Warnw("event relay fell behind; events are lost", "error", err)
			sub.Close()
			sub = s.n.Events()
		default:
			return
		}
	}
}

// closeEvents stops the relay of the node's events; Close does it too.
func (s *Server) closeEvents() {
	s.endStreams()
	s.wg.Wait()
	s.hub.Close()
}

// eventFilter is the ?types= of a stream: names or prefixes of event
// types; empty lets every event through.
type eventFilter []string

func parseEventFilter(values []string) eventFilter {
	var f eventFilter
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				f = append(f, t)
			}
		}
	}
	return f
}

func (f eventFilter) match(typ string) bool {
	if len(f) == 0 || typ == events.TypeLost {
		return true
	}
	for _, p := range f {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// lastEventID reads the event a stream resumes after: the Last-Event-ID
// header, else the last_event_id parameter. ok is false for a new stream.
func lastEventID(r *http.Request) (seq uint64, ok bool, err error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, false, nil
	}
	seq, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, false, badValue(apitype.CodeBadEventID, "last event ID %s is not an event's sequence number", sentence.Quote(v))
	}
	return seq, true, nil
}

// events streams the node's events as server-sent events: each one an "id:"
// (the sequence number), an "event:" (the type) and a "data:" line of JSON;
// see eventsDescription. The stream may stay open for hours: it lifts the
// server's read deadline (net/http clears it too, once a request without a
// body is read; the stream does not count on that), and bounds each write
// instead.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		writeError(w, r, nil, badRequest("the event stream takes no request body"))
		return
	}
	after, resume, err := lastEventID(r)
	if err != nil {
		writeError(w, r, nil, err)
		return
	}
	filter := parseEventFilter(r.URL.Query()["types"])
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Time{}); err != nil {
		writeError(w, r, nil, fmt.Errorf("lift read deadline: %w", err))
		return
	}
	// send writes and flushes one event within eventWriteTimeout.
	send := func(format string, args ...any) error {
		rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	var sub *events.Sub
	if resume {
		sub = s.hub.SubscribeAfter(after, streamBuffer)
	} else {
		sub = s.hub.Subscribe(streamBuffer)
	}
	defer sub.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if err := send(": peercollab events\n\n"); err != nil {
		log.Debugw("write event", "error", err)
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)()
	for {
		next, cancel := context.WithTimeout(ctx, keepAlive)
		ev, err := sub.Next(next)
		cancel()
		switch {
		case err == nil:
			if !filter.match(ev.Type) {
				continue
			}
			data, ok := encodeEvent(ev)
			if !ok {
				continue
			}
			if ev.Seq == 0 { // events.lost: no id, so that Last-Event-ID stays
				err = send("event: %s\ndata: %s\n\n", ev.Type, data)
			} else {
				err = send("id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, data)
			}
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			err = send(": keep-alive\n\n")
		default:
			data, _ := json.Marshal(apitype.ErrorBody{Error: toError(err)})
			send("event: error\ndata: %s\n\n", data)
			return
		}
		if err != nil {
			log.Debugw("write event", "error", err)
			return
		}
	}
}
