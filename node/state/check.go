package state

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
)

// The layout of a bbolt meta page (go.etcd.io/bbolt/internal/common):
// a 16-byte page header, then magic, version, page size and flags
// (uint32 each), the root bucket's page and sequence, the freelist's page,
// the high-water mark (the first page not in use) and the transaction ID
// (uint64 each), then an FNV-64a checksum of all of that. bbolt writes it
// in the machine's byte order.
const (
	boltPageHeader = 16
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltMetaSum    = 4*4 + 8*5 // bytes under the checksum
)

type boltMeta struct {
	pageSize uint32
	freelist uint64
	pgid     uint64
	txid     uint64
}

// bbolt's freelist page: its flag, and the page number of "no freelist".
const (
	boltFreelistFlag = 0x10
	boltNoFreelist   = ^uint64(0)
)

// readMeta reads the meta page at off of f; ok is false if it is not a
// whole, valid one.
func readMeta(f *os.File, off int64) (m boltMeta, ok bool) {
	buf := make([]byte, boltPageHeader+boltMetaSum+8)
	if _, err := f.ReadAt(buf, off); err != nil {
		return m, false
	}
	meta := buf[boltPageHeader:]
	ne := binary.NativeEndian
	h := fnv.New64a()
	h.Write(meta[:boltMetaSum])
	if ne.Uint32(meta[0:]) != boltMagic || ne.Uint32(meta[4:]) != boltVersion || ne.Uint64(meta[boltMetaSum:]) != h.Sum64() {
		return m, false
	}
	return boltMeta{pageSize: ne.Uint32(meta[8:]), freelist: ne.Uint64(meta[32:]), pgid: ne.Uint64(meta[40:]), txid: ne.Uint64(meta[48:])}, true
}

// checkFile refuses a database file that is shorter than the pages its
// meta page says are in use (a file cut short by a copy, or by a full
// disk): bbolt maps the file and would read past its end, which is a fatal
// SIGBUS, not an error. It refuses a damaged freelist page too: bbolt
// panics on one half-way through Open, with the file mapped, and its lock
// then stays until the process ends. A file that is empty, missing, or
// whose meta pages are not valid is left to bbolt, which makes or refuses
// it.
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // bbolt says what is wrong, or creates it
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.Size() == 0 {
		return nil
	}
	// bbolt takes the meta page of the later transaction if it is valid,
	// else the other one.
	m0, ok0 := readMeta(f, 0)
	pageSize := int64(os.Getpagesize())
	if ok0 {
		pageSize = int64(m0.pageSize)
	}
	m1, ok1 := readMeta(f, pageSize)
	m := m0
	if ok1 && (!ok0 || m1.txid > m0.txid) {
		m = m1
	}
	if !ok0 && !ok1 {
		return nil
	}
	if m.pageSize < 512 || m.pageSize > 1<<20 || m.pgid > uint64(info.Size()) {
		return fmt.Errorf("%w: the meta page is damaged (page size %d, %d pages)", ErrCorrupt, m.pageSize, m.pgid)
	}
	if need := int64(m.pgid) * int64(m.pageSize); need > info.Size() {
		return fmt.Errorf("%w: the file is cut short: %d bytes, its pages need %d", ErrCorrupt, info.Size(), need)
	}
	if m.freelist != boltNoFreelist && !freelistFits(f, m) {
		return fmt.Errorf("%w: the freelist page (%d) is damaged", ErrCorrupt, m.freelist)
	}
	return nil
}

// freelistFits reports whether m's freelist page is one, and its page IDs
// fit in its pages.
func freelistFits(f *os.File, m boltMeta) bool {
	if m.freelist < 2 || m.freelist >= m.pgid {
		return false
	}
	off := int64(m.freelist) * int64(m.pageSize)
	head := make([]byte, boltPageHeader+8)
	if _, err := f.ReadAt(head, off); err != nil {
		return false
	}
	ne := binary.NativeEndian
	flags, count, overflow := ne.Uint16(head[8:]), uint64(ne.Uint16(head[10:])), uint64(ne.Uint32(head[12:]))
	if count == 0xFFFF { // the real count is the first element
		count = ne.Uint64(head[boltPageHeader:]) + 1
	}
	pages := overflow + 1
	return flags == boltFreelistFlag && m.freelist+overflow < m.pgid &&
		count <= (pages*uint64(m.pageSize)-boltPageHeader)/8
}
