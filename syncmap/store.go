package syncmap

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cxplay/ctikit/cti"
)

// StoreFile is the name of the durable store's file in its directory.
const StoreFile = "ctikit.db"

// Store is the durable cti.Store (state store and outbox) on local disk:
// one bbolt file in a directory (the reference server's CTI_STATE_DIR).
// Every write is a transaction committed with fsync before it returns, so
// an enqueued sync survives a process kill or a power cut; the file is
// locked, so two processes cannot share it. It implements
// cti.OutboxInspector for the status page and metrics. Safe for
// concurrent use (bbolt serializes writers).
type Store struct {
	db   *bolt.DB
	path string

	mu      sync.Mutex
	pending []*write // writes waiting for the next commit
	leading bool     // a goroutine is committing
}

// write is one update waiting to be committed.
type write struct {
	f    func(*bolt.Tx) error
	done chan error
}

var (
	_ cti.Store           = (*Store)(nil)
	_ cti.AliveStore      = (*Store)(nil)
	_ cti.OutboxInspector = (*Store)(nil)
)

var (
	bucketConvs = []byte("conversations")
	bucketJobs  = []byte("jobs")     // key → SyncJob JSON
	bucketSched = []byte("schedule") // next|enqueued|key → nil: due order
	bucketIndex = []byte("index")    // key → its schedule key
	bucketDead  = []byte("dead")     // key → SyncJob JSON
	bucketMeta  = []byte("meta")     // keyAlive → RFC 3339 time
	buckets     = [][]byte{bucketConvs, bucketJobs, bucketSched, bucketIndex, bucketDead, bucketMeta}
	keyAlive    = []byte("alive")
)

// StoreOption configures OpenStore.
type StoreOption func(*storeConfig)

type storeConfig struct {
	lockTimeout time.Duration
	check       bool
}

// WithLockTimeout sets how long OpenStore waits for another process to
// release the file (default 2s); then it fails with an error saying the
// directory is in use.
func WithLockTimeout(d time.Duration) StoreOption {
	return func(c *storeConfig) { c.lockTimeout = d }
}

// WithoutCheck skips the consistency check of the whole file OpenStore
// does by default (for very large files).
func WithoutCheck() StoreOption {
	return func(c *storeConfig) { c.check = false }
}

// ErrStoreLocked is returned (wrapped) by OpenStore when another process
// holds the store.
var ErrStoreLocked = errors.New("syncmap: state store in use by another process")

// ErrStoreCorrupt is returned (wrapped) by OpenStore when the file is not
// a valid store.
var ErrStoreCorrupt = errors.New("syncmap: state store file is corrupted")

// OpenStore opens (creating it if needed) the durable store in directory
// dir. A file locked by another process, or a corrupted file, is an error
// that says what to do (ErrStoreLocked, ErrStoreCorrupt). Close it when
// done.
func OpenStore(dir string, opts ...StoreOption) (s *Store, err error) {
	cfg := storeConfig{lockTimeout: 2 * time.Second, check: true}
	for _, o := range opts {
		o(&cfg)
	}
	if dir == "" {
		return nil, errors.New("syncmap: OpenStore: empty directory (set CTI_STATE_DIR)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("syncmap: state directory: %w", err)
	}
	path := filepath.Join(dir, StoreFile)
	corrupt := func(cause any) error {
		return fmt.Errorf("%w: %s: %v (move it aside to start empty — its pending syncs are then lost — or restore it from a backup)", ErrStoreCorrupt, path, cause)
	}
	defer func() {
		// bbolt panics on some kinds of damage.
		if r := recover(); r != nil {
			s, err = nil, corrupt(r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: cfg.lockTimeout, FreelistType: bolt.FreelistMapType})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s is locked (is another ctikit running with the same CTI_STATE_DIR?)", ErrStoreLocked, path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return nil, corrupt(err)
	case err != nil:
		return nil, fmt.Errorf("syncmap: open state store %s: %w", path, err)
	}
	fail := func(e error) (*Store, error) {
		_ = db.Close()
		return nil, e
	}
	if cfg.check {
		if err := db.View(func(tx *bolt.Tx) error {
			var errs []error
			for e := range tx.Check() {
				errs = append(errs, e)
			}
			return errors.Join(errs...)
		}); err != nil {
			return fail(corrupt(err))
		}
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fail(fmt.Errorf("syncmap: init state store %s: %w", path, err))
	}
	return &Store{db: db, path: path}, nil
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Close closes the file. Pending jobs stay in it for the next OpenStore.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) view(ctx context.Context, f func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(f)
}

// update runs f in a write transaction and returns once it is committed.
//
// Writes are group-committed: a write arriving while no commit runs is
// committed at once, alone; the writes arriving while a commit runs wait
// for it and then share the next one. Every commit costs two fsyncs (a few
// milliseconds on most disks): one commit per write would queue the
// engine's saves and the dispatcher's puts and acks behind each other at a
// few hundred writes a second, and a busy engine fell seconds behind. An
// idle store adds no delay (unlike bbolt's Batch, which waits for company).
// When a shared commit fails, each of its writes is retried alone, so f
// may run more than once: every f here only puts and deletes keys.
func (s *Store) update(ctx context.Context, f func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &write{f: f, done: make(chan error, 1)}
	s.mu.Lock()
	s.pending = append(s.pending, w)
	lead := !s.leading
	s.leading = true
	s.mu.Unlock()
	if lead {
		s.commit()
	}
	return <-w.done
}

// commit commits the pending writes together; if more arrived meanwhile, a
// new goroutine commits those, so that the caller returns after its own.
func (s *Store) commit() {
	s.mu.Lock()
	ws := s.pending
	s.pending = nil
	s.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, w := range ws {
			if err := w.f(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(ws) > 1 {
		for _, w := range ws { // one write failed the rest: each alone
			w.done <- s.db.Update(w.f)
		}
	} else {
		for _, w := range ws {
			w.done <- err
		}
	}
	s.mu.Lock()
	more := len(s.pending) > 0
	s.leading = more
	s.mu.Unlock()
	if more {
		go s.commit()
	}
}

// LoadConversation implements cti.StateStore.
func (s *Store) LoadConversation(ctx context.Context, id string) (*cti.ConvRecord, error) {
	var rec *cti.ConvRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketConvs).Get([]byte(id))
		if v == nil {
			return cti.ErrNotFound
		}
		rec = new(cti.ConvRecord)
		return json.Unmarshal(v, rec)
	})
	if err != nil {
		if errors.Is(err, cti.ErrNotFound) {
			return nil, fmt.Errorf("syncmap: conversation %s: %w", id, cti.ErrNotFound)
		}
		return nil, fmt.Errorf("syncmap: load conversation %s: %w", id, err)
	}
	return rec, nil
}

// SaveConversation implements cti.StateStore.
func (s *Store) SaveConversation(ctx context.Context, rec *cti.ConvRecord) error {
	return s.SaveConversationWithJobs(ctx, rec, nil)
}

// MarkAlive implements cti.AliveStore.
func (s *Store) MarkAlive(ctx context.Context, t time.Time) error {
	b := []byte(t.UTC().Format(time.RFC3339Nano))
	return wrap("mark alive", s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyAlive, b)
	}))
}

// LastAlive implements cti.AliveStore.
func (s *Store) LastAlive(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyAlive)
		if v == nil {
			return nil
		}
		var err error
		t, err = time.Parse(time.RFC3339Nano, string(v))
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("syncmap: when the engine last ran: %w", err)
	}
	return t, nil
}

// OpenConversations implements cti.StateStore.
func (s *Store) OpenConversations(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConvs).ForEach(func(k, v []byte) error {
			var r struct {
				Done bool `json:"done"`
			}
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("conversation %s: %w", k, err)
			}
			if !r.Done {
				ids = append(ids, string(k))
			}
			return nil
		})
	})
	return ids, wrap("open conversations", err)
}

// PruneConversations implements cti.StateStore.
func (s *Store) PruneConversations(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketConvs)
		var del [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var r struct {
				Done      bool      `json:"done"`
				UpdatedAt time.Time `json:"updatedAt"`
			}
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("conversation %s: %w", k, err)
			}
			if r.Done && r.UpdatedAt.Before(before) {
				del = append(del, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range del {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(del)
		return nil
	})
	return n, wrap("prune conversations", err)
}

// schedKey orders jobs by next attempt, then enqueue time, then key.
func schedKey(j *cti.SyncJob) []byte {
	k := make([]byte, 16, 16+len(j.Key))
	binary.BigEndian.PutUint64(k[0:8], stamp(j.NextAttempt))
	binary.BigEndian.PutUint64(k[8:16], stamp(j.EnqueuedAt))
	return append(k, j.Key...)
}

// stamp is t as sortable nanoseconds; the zero time (and anything before
// 1970) is 0.
func stamp(t time.Time) uint64 {
	if t.IsZero() || t.Before(time.Unix(0, 0)) {
		return 0
	}
	return uint64(t.UnixNano())
}

// Put implements cti.Outbox.
func (s *Store) Put(ctx context.Context, job *cti.SyncJob) error {
	put, err := putJob(job)
	if err != nil {
		return err
	}
	return wrap("put job", s.update(ctx, put))
}

// SaveConversationWithJobs implements cti.JobSaver: the record and the
// jobs in one transaction (one commit, and all or nothing).
func (s *Store) SaveConversationWithJobs(ctx context.Context, rec *cti.ConvRecord, jobs []*cti.SyncJob) error {
	if rec == nil || rec.ID == "" {
		return fmt.Errorf("syncmap: %w: conversation record without an id", cti.ErrInvalid)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("syncmap: save conversation %s: %w", rec.ID, err)
	}
	puts := make([]func(*bolt.Tx) error, len(jobs))
	for i, j := range jobs {
		if puts[i], err = putJob(j); err != nil {
			return err
		}
	}
	op := "save conversation"
	if len(jobs) > 0 {
		op += " with jobs"
	}
	return wrap(op, s.update(ctx, func(tx *bolt.Tx) error {
		for _, put := range puts {
			if err := put(tx); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketConvs).Put([]byte(rec.ID), b)
	}))
}

// putJob checks and encodes job and returns the write that puts it.
func putJob(job *cti.SyncJob) (func(*bolt.Tx) error, error) {
	if job == nil || job.Key == "" {
		return nil, fmt.Errorf("syncmap: %w: sync job without a key", cti.ErrInvalid)
	}
	b, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("syncmap: put job %s: %w", job.Key, err)
	}
	key := []byte(job.Key)
	sk := schedKey(job)
	return func(tx *bolt.Tx) error {
		if err := unschedule(tx, key); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSched).Put(sk, nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketIndex).Put(key, sk); err != nil {
			return err
		}
		return tx.Bucket(bucketJobs).Put(key, b)
	}, nil
}

// unschedule removes key from the pending jobs (job, schedule, index).
func unschedule(tx *bolt.Tx, key []byte) error {
	idx := tx.Bucket(bucketIndex)
	if old := idx.Get(key); old != nil {
		if err := tx.Bucket(bucketSched).Delete(slices.Clone(old)); err != nil {
			return err
		}
		if err := idx.Delete(key); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketJobs).Delete(key)
}

// Due implements cti.Outbox.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]*cti.SyncJob, time.Time, error) {
	type entry struct {
		enq uint64
		key []byte
	}
	var (
		due  []*cti.SyncJob
		next time.Time
	)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var ready []entry
		c := tx.Bucket(bucketSched).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) < 16 {
				continue
			}
			at := binary.BigEndian.Uint64(k[0:8])
			if at > stamp(now) {
				next = time.Unix(0, int64(at))
				break
			}
			ready = append(ready, entry{enq: binary.BigEndian.Uint64(k[8:16]), key: k[16:]})
		}
		slices.SortFunc(ready, func(a, b entry) int {
			return cmp.Or(cmp.Compare(a.enq, b.enq), bytes.Compare(a.key, b.key))
		})
		if limit > 0 && len(ready) > limit {
			ready = ready[:limit]
		}
		jobs := tx.Bucket(bucketJobs)
		for _, e := range ready {
			v := jobs.Get(e.key)
			if v == nil {
				continue
			}
			j := new(cti.SyncJob)
			if err := json.Unmarshal(v, j); err != nil {
				return fmt.Errorf("job %s: %w", e.key, err)
			}
			due = append(due, j)
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, wrap("due jobs", err)
	}
	return due, next, nil
}

// Ack implements cti.Outbox.
func (s *Store) Ack(ctx context.Context, key string) error {
	return wrap("ack job", s.update(ctx, func(tx *bolt.Tx) error {
		return unschedule(tx, []byte(key))
	}))
}

// Bury implements cti.Outbox.
func (s *Store) Bury(ctx context.Context, job *cti.SyncJob, reason string) error {
	if job == nil || job.Key == "" {
		return fmt.Errorf("syncmap: %w: sync job without a key", cti.ErrInvalid)
	}
	c := *job
	c.LastError = reason
	b, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("syncmap: bury job %s: %w", job.Key, err)
	}
	key := []byte(job.Key)
	return wrap("bury job", s.update(ctx, func(tx *bolt.Tx) error {
		if err := unschedule(tx, key); err != nil {
			return err
		}
		return tx.Bucket(bucketDead).Put(key, b)
	}))
}

// Stats implements cti.OutboxInspector.
func (s *Store) Stats(ctx context.Context) (cti.OutboxStats, error) {
	var st cti.OutboxStats
	err := s.view(ctx, func(tx *bolt.Tx) error {
		st.Pending = count(tx.Bucket(bucketJobs))
		st.Dead = count(tx.Bucket(bucketDead))
		return nil
	})
	return st, wrap("outbox stats", err)
}

func count(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

// DeadLetters implements cti.OutboxInspector: the buried jobs, by key.
func (s *Store) DeadLetters(ctx context.Context) ([]*cti.SyncJob, error) {
	var out []*cti.SyncJob
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			j := new(cti.SyncJob)
			if err := json.Unmarshal(v, j); err != nil {
				return fmt.Errorf("dead job %s: %w", k, err)
			}
			out = append(out, j)
			return nil
		})
	})
	return out, wrap("dead letters", err)
}

// Requeue moves a dead letter back to the pending jobs, due now, with its
// attempts and deferrals reset (after the cause was fixed); Tries is kept,
// so the sink still checks what an earlier delivery wrote. An unknown key
// is cti.ErrNotFound.
func (s *Store) Requeue(ctx context.Context, key string, now time.Time) error {
	return wrap("requeue job", s.update(ctx, func(tx *bolt.Tx) error {
		dead := tx.Bucket(bucketDead)
		v := dead.Get([]byte(key))
		if v == nil {
			return fmt.Errorf("dead letter %s: %w", key, cti.ErrNotFound)
		}
		j := new(cti.SyncJob)
		if err := json.Unmarshal(v, j); err != nil {
			return err
		}
		j.Attempts, j.Deferrals, j.NextAttempt, j.LastError = 0, 0, now, ""
		b, err := json.Marshal(j)
		if err != nil {
			return err
		}
		if err := dead.Delete([]byte(key)); err != nil {
			return err
		}
		sk := schedKey(j)
		if err := tx.Bucket(bucketSched).Put(sk, nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketIndex).Put([]byte(key), sk); err != nil {
			return err
		}
		return tx.Bucket(bucketJobs).Put([]byte(key), b)
	}))
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("syncmap: state store: %s: %w", op, err)
}
