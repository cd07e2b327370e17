package wire

import (
	"bytes"
	"testing"

	"github.com/libp2p/go-msgio/pbio"

	"github.com/peercollab/peercollab/protocols/pb"
)

// countWriter counts the Write calls it gets.
type countWriter struct {
	bytes.Buffer
	writes int
}

func (w *countWriter) Write(b []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(b)
}

// TestWriteOnce: a message goes out in one Write, also an empty one (the
// case that failed over QUIC when its length and body were two Writes),
// and reads back as pbio's delimited format.
func TestWriteOnce(t *testing.T) {
	var w0 countWriter
	if err := write(&w0, &pb.SnapshotRequest{}); err != nil {
		t.Fatal(err)
	}
	if w0.writes != 1 {
		t.Errorf("empty: %d writes, want 1", w0.writes)
	}
	if err := pbio.NewDelimitedReader(&w0, 64).ReadMsg(&pb.SnapshotRequest{}); err != nil {
		t.Errorf("empty: read back: %v", err)
	}
	hello := &pb.Hello{Near: true, Bye: true}
	var w countWriter
	if err := write(&w, hello); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 {
		t.Errorf("hello: %d writes, want 1", w.writes)
	}
	var got pb.Hello
	if err := pbio.NewDelimitedReader(&w, 1<<10).ReadMsg(&got); err != nil || !got.GetNear() || !got.GetBye() {
		t.Errorf("hello read back as %v, %v", &got, err)
	}
}
