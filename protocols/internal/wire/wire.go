// Package wire holds what every request/response protocol of peercollab
// does the same way: open a stream (also on limited relayed connections),
// set a deadline, write one varint-delimited protobuf, read one back capped
// at the protocol's maximum, Reset on every error and Close on success.
package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// ErrTooLarge means a message exceeded its protocol's size cap.
var ErrTooLarge = errors.New("wire: message too large")

// Exchange sends req to p over a new stream of protocol id and reads the
// answer into resp, at most maxSize bytes, all within timeout (or ctx).
func Exchange(ctx context.Context, h host.Host, p peer.ID, id protocol.ID, req, resp proto.Message, maxSize int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, string(id)), p, id)
	if err != nil {
		return fmt.Errorf("open %s stream: %w", id, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	if err := write(s, req); err != nil {
		s.Reset()
		return fmt.Errorf("send %s request: %w", id, err)
	}
	// The handler reads one delimited message, so it may have answered and
	// closed before this FIN leaves; over QUIC its close stops our sending
	// (STOP_SENDING, code 0), and CloseWrite and Close fail although the
	// exchange went well. Whether it did is what reading the answer says.
	s.CloseWrite()
	if err := read(s, resp, maxSize); err != nil {
		s.Reset()
		return fmt.Errorf("read %s answer: %w", id, err)
	}
	s.Close()
	return nil
}

// Handler returns a stream handler that reads one request (at most maxSize
// bytes, within timeout), answers it with serve, and closes the stream.
// serve runs on the stream's goroutine; an error from it resets the stream
// without an answer.
func Handler[Req, Resp proto.Message](maxSize int, timeout time.Duration, newReq func() Req,
	serve func(ctx context.Context, from peer.ID, req Req) (Resp, error)) network.StreamHandler {
	return func(s network.Stream) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		s.SetDeadline(time.Now().Add(timeout))
		req := newReq()
		if err := read(s, req, maxSize); err != nil {
			s.Reset()
			return
		}
		resp, err := serve(ctx, s.Conn().RemotePeer(), req)
		if err != nil {
			s.Reset()
			return
		}
		if err := write(s, resp); err != nil {
			s.Reset()
			return
		}
		s.Close()
	}
}

// write sends m after its varint length in a single Write. pbio writes the
// length and the body separately: a handler that has a whole message after
// the length (an empty one) answers and closes, and over QUIC the second
// Write then fails.
func write(w io.Writer, m proto.Message) error {
	size := proto.Size(m)
	b := protowire.AppendVarint(make([]byte, 0, protowire.SizeVarint(uint64(size))+size), uint64(size))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func read(s network.Stream, m proto.Message, maxSize int) error {
	err := pbio.NewDelimitedReader(s, maxSize).ReadMsg(m)
	if errors.Is(err, io.ErrShortBuffer) { // pbio's answer to an oversized length
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxSize)
	}
	return err
}
