package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// keepAlive is how often an idle event stream sends a comment line, so that
// dead clients are noticed and proxies keep the stream open.
const keepAlive = 15 * time.Second

// events streams the node's events as server-sent events: each one an "id:"
// (the sequence number), an "event:" (the type) and a "data:" line of JSON.
// A stream that falls too far behind ends with an "error" event.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, badRequest("streaming is not supported on this connection"))
		return
	}
	sub := s.n.Events()
	defer sub.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": peercollab events\n\n")
	flusher.Flush()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)()
	for {
		next, cancel := context.WithTimeout(ctx, keepAlive)
		ev, err := sub.Next(next)
		cancel()
		switch {
		case err == nil:
			data, jerr := json.Marshal(ev)
			if jerr != nil {
				log.Errorw("encode event", "type", ev.Type, "error", jerr)
				continue
			}
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, data)
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Fprint(w, ": keep-alive\n\n")
		default:
			data, _ := json.Marshal(errorBody{toError(err)})
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", data)
			flusher.Flush()
			return
		}
		flusher.Flush()
	}
}
