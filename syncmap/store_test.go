package syncmap_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
	"github.com/cxplay/ctikit/syncmap"
)

func openStore(t *testing.T, dir string) *syncmap.Store {
	t.Helper()
	s, err := syncmap.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStoreConformance(t *testing.T) {
	ctitest.TestStore(t, func(t *testing.T) cti.Store { return openStore(t, t.TempDir()) })
}

// TestStoreSaveWithJobsAllOrNothing: a record saved with its jobs is
// written with all of them or not at all, and survives a reopen.
func TestStoreSaveWithJobsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	rec := &cti.ConvRecord{ID: "c1", UpdatedAt: time.Now(), Done: true}
	good := &cti.SyncJob{Key: "c1/l1", ConversationID: "c1", LegID: "l1", Rule: "r", EnqueuedAt: time.Now()}
	bad := &cti.SyncJob{ConversationID: "c1", LegID: "l2"} // no key
	if err := s.SaveConversationWithJobs(ctx, rec, []*cti.SyncJob{good, bad}); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("SaveConversationWithJobs with a keyless job = %v, want ErrInvalid", err)
	}
	if _, err := s.LoadConversation(ctx, "c1"); !errors.Is(err, cti.ErrNotFound) {
		t.Fatalf("the record was saved without its jobs: Load = %v", err)
	}
	if st, err := s.Stats(ctx); err != nil || st.Pending != 0 {
		t.Fatalf("the good job was put without the record: %+v %v", st, err)
	}
	if err := s.SaveConversationWithJobs(ctx, rec, []*cti.SyncJob{good}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	if got, err := s.LoadConversation(ctx, "c1"); err != nil || !got.Done {
		t.Fatalf("after reopen: Load = %+v, %v", got, err)
	}
	due, _, err := s.Due(ctx, time.Now().Add(time.Minute), 10)
	if err != nil || len(due) != 1 || due[0].Key != "c1/l1" {
		t.Fatalf("after reopen: Due = %v, %v", due, err)
	}
}

func TestStoreSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := syncmap.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	big := make([]byte, 100_000)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	job := &cti.SyncJob{Key: "c1/l1", ConversationID: "c1", LegID: "l1", Rule: "r", EnqueuedAt: t0,
		Conversation: &cti.Conversation{ID: "c1", Content: cti.Content{Transcript: string(big)}}}
	if err := s.Put(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := s.Bury(ctx, &cti.SyncJob{Key: "c2/l1", ConversationID: "c2", EnqueuedAt: t0, Tries: 3, Attempts: 5, Deferrals: 50}, "422"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveConversation(ctx, &cti.ConvRecord{ID: "c1", UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	due, _, err := s.Due(ctx, t0, 10)
	if err != nil || len(due) != 1 || due[0].Conversation.Content.Transcript != string(big) {
		t.Fatalf("after reopen: Due = %d jobs, %v; want the job with its 100k transcript", len(due), err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st != (cti.OutboxStats{Pending: 1, Dead: 1}) {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	if err := s.Requeue(ctx, "c2/l1", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Requeue(ctx, "nope", t0); !errors.Is(err, cti.ErrNotFound) {
		t.Fatalf("Requeue(unknown) = %v, want ErrNotFound", err)
	}
	due, _, _ = s.Due(ctx, t0, 10)
	if len(due) != 2 {
		t.Fatalf("after requeue: %d due, want 2", len(due))
	}
	for _, j := range due {
		if j.Key == "c2/l1" && (j.Attempts != 0 || j.Deferrals != 0 || j.Tries != 3 || j.LastError != "") {
			t.Fatalf("requeued job: attempts %d, deferrals %d, tries %d, last error %q; want 0, 0, 3 (kept), none",
				j.Attempts, j.Deferrals, j.Tries, j.LastError)
		}
	}
	if ids, _ := s.OpenConversations(ctx); len(ids) != 1 || ids[0] != "c1" {
		t.Fatalf("OpenConversations = %v", ids)
	}
}

// TestStoreAliveSurvivesReopen: the engine's last sign of life is durable.
func TestStoreAliveSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := syncmap.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 9, 0, 0, 123456789, time.UTC)
	if err := s.MarkAlive(ctx, at); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := openStore(t, dir).LastAlive(ctx)
	if err != nil || !got.Equal(at) {
		t.Fatalf("LastAlive after reopen = %v, %v; want %v", got, err, at)
	}
}

func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir)
	_, err := syncmap.OpenStore(dir, syncmap.WithLockTimeout(50*time.Millisecond))
	if !errors.Is(err, syncmap.ErrStoreLocked) {
		t.Fatalf("second open = %v, want ErrStoreLocked", err)
	}
	if want := "CTI_STATE_DIR"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q should mention %s", err, want)
	}
}

func TestStoreCorrupt(t *testing.T) {
	for name, content := range map[string][]byte{
		"garbage":   []byte("this is not a bbolt file, just some text that is long enough....................................."),
		"truncated": nil, // filled below from a real store
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, syncmap.StoreFile)
			if content == nil {
				s := openStore(t, t.TempDir())
				_ = s.Put(context.Background(), &cti.SyncJob{Key: "k"})
				b, err := os.ReadFile(s.Path())
				if err != nil {
					t.Fatal(err)
				}
				content = make([]byte, len(b))
				copy(content, b)
				for i := 4096 * 2; i < len(content); i++ { // wipe everything after the meta pages
					content[i] = 0xff
				}
			}
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := syncmap.OpenStore(dir)
			if !errors.Is(err, syncmap.ErrStoreCorrupt) {
				t.Fatalf("open = %v, want ErrStoreCorrupt", err)
			}
			if !strings.Contains(err.Error(), "move it aside") {
				t.Fatalf("error %q does not say what to do", err)
			}
		})
	}
}
