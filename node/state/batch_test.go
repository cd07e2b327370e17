package state_test

import (
	"path/filepath"
	"testing"

	"github.com/peercollab/peercollab/node/state"
)

// TestBatch: a batch's writes land together; one that cannot be encoded
// makes none land.
func TestBatch(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), state.File), state.Options{Relaxed: true})
	if err := d.Put("b", "old", 1); err != nil {
		t.Fatal(err)
	}
	var b state.Batch
	b.Put("b", "one", 1)
	b.Put("c", "two", 2)
	b.Delete("b", "old")
	b.Delete("nowhere", "x")
	if err := d.Write(&b); err != nil {
		t.Fatal(err)
	}
	var v int
	if found, _ := d.Get("b", "old", &v); found {
		t.Fatal("a deleted key is still there")
	}
	if found, err := d.Get("c", "two", &v); !found || err != nil || v != 2 {
		t.Fatalf("Get = %v, %v, %d", found, err, v)
	}
	var bad state.Batch
	bad.Put("b", "three", 3)
	bad.Put("b", "four", func() {})
	if err := d.Write(&bad); err == nil {
		t.Fatal("a batch with a value that does not encode was written")
	}
	if found, _ := d.Get("b", "three", &v); found {
		t.Fatal("part of a failed batch landed")
	}
}
