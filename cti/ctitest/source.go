package ctitest

import (
	"context"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// Source is an in-memory cti.Source: tests push snapshots with Send.
type Source struct {
	once    sync.Once
	ready   chan struct{}
	h       cti.Handler
	mu      sync.Mutex
	resumed []string
	since   []time.Time
	pending time.Time
}

var (
	_ cti.Source         = (*Source)(nil)
	_ cti.Resumer        = (*Source)(nil)
	_ cti.Backfiller     = (*Source)(nil)
	_ cti.PendingLookups = (*Source)(nil)
)

// NewSource returns a Source.
func NewSource() *Source { return &Source{ready: make(chan struct{})} }

// Run implements cti.Source: it makes Send deliver to h until ctx is done.
func (s *Source) Run(ctx context.Context, h cti.Handler) error {
	s.once.Do(func() {
		s.h = h
		close(s.ready)
	})
	<-ctx.Done()
	return nil
}

// Resume implements cti.Resumer, recording the ids.
func (s *Source) Resume(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resumed = append(s.resumed, ids...)
}

// Resumed returns the ids passed to Resume.
func (s *Source) Resumed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.resumed...)
}

// Backfill implements cti.Backfiller, recording since.
func (s *Source) Backfill(since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.since = append(s.since, since)
}

// Backfilled returns the times passed to Backfill.
func (s *Source) Backfilled() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.since...)
}

// SetPending sets what PendingSince returns.
func (s *Source) SetPending(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = t
}

// PendingSince implements cti.PendingLookups (zero unless SetPending).
func (s *Source) PendingSince() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// Send delivers snapshots to the handler, waiting until Run has started
// (or ctx is done).
func (s *Source) Send(ctx context.Context, cs ...*cti.Conversation) error {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, c := range cs {
		if err := s.h.HandleConversation(ctx, c); err != nil {
			return err
		}
	}
	return nil
}
