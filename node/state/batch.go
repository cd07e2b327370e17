package state

import (
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

// Batch is a set of writes that Write applies in one transaction: all of
// them or none. The zero value is an empty batch; it is not safe for
// concurrent use.
type Batch struct {
	ops []batchOp
	err error
}

type batchOp struct {
	bucket, key string
	raw         []byte // nil: delete
}

// Put adds storing v under key in bucket. A value that does not encode is
// Write's error.
func (b *Batch) Put(bucket, key string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		if b.err == nil {
			b.err = err
		}
		return
	}
	b.ops = append(b.ops, batchOp{bucket, key, raw})
}

// Delete adds removing key from bucket (a missing key is no error).
func (b *Batch) Delete(bucket, key string) { b.ops = append(b.ops, batchOp{bucket, key, nil}) }

// Len is how many writes the batch holds.
func (b *Batch) Len() int { return len(b.ops) }

// Write applies b in one transaction.
func (d *DB) Write(b *Batch) (err error) {
	if b.err != nil {
		return b.err
	}
	if len(b.ops) == 0 {
		return nil
	}
	d.dirty.Store(true)
	defer guard(&err)()
	return d.db.Update(func(tx *bolt.Tx) error {
		for _, op := range b.ops {
			if op.raw == nil {
				if bk := tx.Bucket([]byte(op.bucket)); bk != nil {
					if err := bk.Delete([]byte(op.key)); err != nil {
						return err
					}
				}
				continue
			}
			bk, err := tx.CreateBucketIfNotExists([]byte(op.bucket))
			if err != nil {
				return err
			}
			if err := bk.Put([]byte(op.key), op.raw); err != nil {
				return err
			}
		}
		return nil
	})
}
