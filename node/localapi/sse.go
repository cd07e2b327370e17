package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/localapi/apitype"
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

// events streams the node's events as server-sent events: each one an "id:"
// (the sequence number), an "event:" (the type) and a "data:" line of JSON.
// A stream that falls too far behind ends with an "error" event. The stream
// may stay open for hours: it lifts the server's read deadline (net/http
// clears it too, once a request without a body is read; the stream does not
// count on that), and bounds each write instead.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		writeError(w, r, nil, badRequest("the event stream takes no request body"))
		return
	}
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
	sub := s.n.Events()
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
			data, ok := encodeEvent(ev)
			if !ok {
				continue
			}
			err = send("id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, data)
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
