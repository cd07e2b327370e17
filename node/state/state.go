// Package state is a node's durable state other than its contacts: the
// sign-in scope, the endpoint name, registered applications, and later
// invitations. It is a bbolt database of JSON values in named buckets, with
// fsync'd transactions, so an acknowledged write survives a crash.
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var log = logging.Logger("peercollab/state")

// File is the name of the state database in a data directory.
const File = "state.db"

// InvitationsFile is the name of the (relaxed) invitation database.
const InvitationsFile = "invitations.db"

// ErrLocked means another process holds the database.
var ErrLocked = errors.New("state: database is in use by another process")

// ErrCorrupt means the database file, or a value in it, cannot be read:
// damaged on disk, or written by an incompatible version.
var ErrCorrupt = errors.New("state: stored data is damaged")

// Options tune a database.
type Options struct {
	// Relaxed trades durability for latency, for short-lived records such
	// as invitations: a write is in the operating system's hands when Put
	// returns, so it survives the process dying or restarting, but reaches
	// the disk only within FlushEvery. A crash of the machine may lose the
	// last moments of writes, and a database found damaged at start is
	// moved aside (to PATH.damaged-UNIXTIME) and started afresh. The growth
	// of the file is not synced at once either (bbolt's NoGrowSync): a
	// write that grows it costs no more than any other.
	Relaxed bool
}

// FlushEvery is how soon a relaxed database's writes reach the disk.
const FlushEvery = 200 * time.Millisecond

// DB is the state database. Its methods are safe for concurrent use.
type DB struct {
	db    *bolt.DB
	dirty atomic.Bool
	stop  chan struct{}
	done  chan struct{}
}

// Open opens (creating if needed) the database at path. A file that is no
// database, or a damaged one, is an error wrapping ErrCorrupt (for a
// relaxed database: moved aside, see Options.Relaxed).
func Open(path string, opts Options) (*DB, error) {
	bo := &bolt.Options{Timeout: time.Second, NoSync: opts.Relaxed, NoGrowSync: opts.Relaxed}
	db, err := openBolt(path, bo)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil && opts.Relaxed {
		aside := fmt.Sprintf("%s.damaged-%d", path, time.Now().Unix())
		if rerr := os.Rename(path, aside); rerr == nil {
			log.Errorw("state database damaged; moved aside and started afresh", "path", path, "aside", aside, "error", err)
			db, err = openBolt(path, bo)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	d := &DB{db: db}
	if opts.Relaxed {
		d.stop, d.done = make(chan struct{}), make(chan struct{})
		go d.flush()
	}
	return d, nil
}

// openBolt opens a bbolt database, with its errors about a damaged file,
// and its panics (bbolt panics on some damaged pages), as ErrCorrupt.
func openBolt(path string, bo *bolt.Options) (db *bolt.DB, err error) {
	if err := checkFile(path); err != nil {
		return nil, err
	}
	// The file bbolt opens, to close it (and release its lock) if bbolt
	// panics half-way through Open.
	var file *os.File
	o := *bo
	o.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	defer func() {
		if errors.Is(err, ErrCorrupt) && db == nil && file != nil {
			file.Close()
		}
	}()
	defer guard(&err)()
	db, err = bolt.Open(path, 0o600, &o)
	switch {
	case err == nil || errors.Is(err, bolterrors.ErrTimeout):
		return db, err
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
		errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrInvalidMapping):
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil, err
}

// guard turns what bbolt does on a damaged page into an error wrapping
// ErrCorrupt: a panic of its own, or a memory fault where a page number
// points past the end of the mapped file (made a panic for the goroutine
// while it is guarded). bbolt rolls back the transaction it panicked in.
// Only bbolt's code runs guarded, never a caller's. Use as
// "defer guard(&err)()".
func guard(err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			*err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}
}

// flush syncs a relaxed database to disk every FlushEvery while it has
// unsynced writes.
func (d *DB) flush() {
	defer close(d.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			if d.dirty.Swap(false) {
				if err := d.db.Sync(); err != nil {
					log.Errorw("sync state database", "error", err)
				}
			}
		}
	}
}

// Close syncs and closes the database.
func (d *DB) Close() error {
	if d.stop != nil {
		close(d.stop)
		<-d.done
		d.db.Sync()
	}
	return d.db.Close()
}

// Get decodes the value of key in bucket into v (a non-nil pointer); it
// reports false if there is none. A value that does not decode into v is an
// error wrapping ErrCorrupt, and leaves v as it was (but for maps, slices
// and pointers that v shares).
func (d *DB) Get(bucket, key string, v any) (bool, error) {
	raw, err := d.get(bucket, key)
	if err != nil || raw == nil {
		return false, err
	}
	if err := decodeInto(raw, v); err != nil {
		return true, fmt.Errorf("%w: %s %q: %v", ErrCorrupt, bucket, cut(key), err)
	}
	return true, nil
}

// get returns a copy of the value of key in bucket, nil if there is none.
func (d *DB) get(bucket, key string) (raw []byte, err error) {
	defer guard(&err)()
	err = d.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucket)); b != nil {
			raw = bytes.Clone(b.Get([]byte(key)))
		}
		return nil
	})
	return raw, err
}

// decodeInto decodes raw into a copy of *v, and stores the copy in *v if
// the whole value decodes.
func decodeInto(raw []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return json.Unmarshal(raw, v) // json's error about v
	}
	cp := reflect.New(rv.Elem().Type())
	cp.Elem().Set(rv.Elem())
	if err := json.Unmarshal(raw, cp.Interface()); err != nil {
		return err
	}
	rv.Elem().Set(cp.Elem())
	return nil
}

// cut shortens a key for an error message.
func cut(key string) string {
	const most = 64
	if len(key) <= most {
		return key
	}
	return strings.ToValidUTF8(key[:most], "") + "…"
}

// Put stores v under key in bucket.
func (d *DB) Put(bucket, key string, v any) (err error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	d.dirty.Store(true)
	defer guard(&err)()
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), raw)
	})
}

// Delete removes key from bucket; a missing key is no error.
func (d *DB) Delete(bucket, key string) (err error) {
	d.dirty.Store(true)
	defer guard(&err)()
	return d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
}

// ForEach calls fn with every key and raw JSON value of bucket, in key
// order, as they were at the call. raw is fn's to keep. fn runs outside the
// database's transaction, so it may read and write the database. A nested
// bucket, which this package never makes, is skipped.
func (d *DB) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	keys, values, err := d.all(bucket)
	if err != nil {
		return err
	}
	for i, k := range keys {
		if err := fn(k, values[i]); err != nil {
			return err
		}
	}
	return nil
}

// all returns copies of every key and value of bucket.
func (d *DB) all(bucket string) (keys []string, values [][]byte, err error) {
	defer guard(&err)()
	err = d.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if v != nil {
				keys, values = append(keys, string(k)), append(values, bytes.Clone(v))
			}
			return nil
		})
	})
	return keys, values, err
}
