// Package state is a node's durable state other than its contacts: the
// sign-in scope, the endpoint name, registered applications, and later
// invitations. It is a bbolt database of JSON values in named buckets, with
// fsync'd transactions, so an acknowledged write survives a crash.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
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

// Options tune a database.
type Options struct {
	// Relaxed trades durability for latency, for short-lived records such
	// as invitations: a write is in the operating system's hands when Put
	// returns, so it survives the process dying or restarting, but reaches
	// the disk only within FlushEvery. A crash of the machine may lose the
	// last moments of writes, and a database found damaged at start is
	// moved aside (to PATH.damaged-UNIXTIME) and started afresh.
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

// Open opens (creating if needed) the database at path.
func Open(path string, opts Options) (*DB, error) {
	bo := &bolt.Options{Timeout: time.Second, NoSync: opts.Relaxed}
	db, err := bolt.Open(path, 0o600, bo)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil && opts.Relaxed {
		aside := fmt.Sprintf("%s.damaged-%d", path, time.Now().Unix())
		if rerr := os.Rename(path, aside); rerr == nil {
			log.Errorw("state database damaged; moved aside and started afresh", "path", path, "aside", aside, "error", err)
			db, err = bolt.Open(path, 0o600, bo)
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

// Get decodes the value of key in bucket into v; it reports false if there
// is none.
func (d *DB) Get(bucket, key string, v any) (bool, error) {
	var found bool
	err := d.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		raw := b.Get([]byte(key))
		if raw == nil {
			return nil
		}
		found = true
		return json.Unmarshal(raw, v)
	})
	return found, err
}

// Put stores v under key in bucket.
func (d *DB) Put(bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	d.dirty.Store(true)
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), raw)
	})
}

// Delete removes key from bucket; a missing key is no error.
func (d *DB) Delete(bucket, key string) error {
	d.dirty.Store(true)
	return d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
}

// ForEach calls fn with every key and raw JSON value of bucket, in key order.
func (d *DB) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	return d.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
	})
}
