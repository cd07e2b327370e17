package gossip_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/peercollab/peercollab/protocols/internal/gossip"
)

func TestPad(t *testing.T) {
	buckets := []int{16, 64}
	for _, tc := range []struct {
		name string
		in   []byte
		size int
	}{
		{"empty", nil, 16},
		{"ends in zeros", []byte{1, 0, 0}, 16},
		{"ends in the marker", []byte{0x80}, 16},
		{"one short of a bucket", bytes.Repeat([]byte{7}, 15), 16},
		{"a bucket's worth", bytes.Repeat([]byte{7}, 16), 64},
		{"beyond the largest", bytes.Repeat([]byte{7}, 64), 128},
		{"far beyond", bytes.Repeat([]byte{7}, 200), 256},
	} {
		p := gossip.Pad(tc.in, buckets)
		if len(p) != tc.size {
			t.Errorf("%s: padded to %d, want %d", tc.name, len(p), tc.size)
		}
		got, err := gossip.Unpad(p)
		if err != nil || !bytes.Equal(got, tc.in) {
			t.Errorf("%s: Unpad = %x, %v", tc.name, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {0, 0}, {1, 2, 3}} {
		if _, err := gossip.Unpad(bad); !errors.Is(err, gossip.ErrBadPadding) {
			t.Errorf("Unpad(%x) = %v", bad, err)
		}
	}
}

func FuzzUnpad(f *testing.F) {
	f.Add([]byte{1, 0x80, 0})
	f.Add([]byte{0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := gossip.Unpad(b)
		if err != nil {
			return
		}
		// Whatever unpads came from Pad, and pads back to a prefix of it.
		if p := gossip.Pad(got, []int{len(b)}); !bytes.Equal(p, b) {
			t.Fatalf("Pad(Unpad(%x)) = %x", b, p)
		}
	})
}
