package state

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// PutRaw stores raw bytes under key in bucket, as a damaged disk might.
func (d *DB) PutRaw(bucket, key string, raw []byte) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), raw)
	})
}

// Walk reads every bucket, key and value of the database, as a start-up
// reading everything would, and then checks the file's consistency.
func (d *DB) Walk() (n int, err error) {
	defer guard(&err)()
	err = d.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				n += len(bytes.Clone(k)) + len(bytes.Clone(v))
				return nil
			})
		})
	})
	return n, err
}
