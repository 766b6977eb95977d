package genesys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mypurecloud/platform-client-sdk-go/v157/platformclientv2"
)

// Conversations that start while no notification socket is connected are
// never seen on the socket: re-fetching the tracked conversations after a
// gap cannot find them. After a gap, the source asks the analytics API for
// the conversations that had activity on its queues and users during the
// gap, at once and again once the analytics index has caught up
// (AnalyticsLag), and fetches those it was not tracking.

// queryPredicates is how many queue and user predicates one details query
// carries; more are split over several queries.
const queryPredicates = 50

// queryPages bounds the pages read per query of queryPageSize
// conversations (the API's largest page).
const (
	queryPages    = 100
	queryPageSize = 100
)

// ConversationsDuring returns the ids of the conversations that had
// activity between from and to on any of the queues or with any of the
// users (POST /api/v2/analytics/conversations/details/query, a segment
// filter on queueId and userId, every page), without repeats: oldest
// first per query of 50 queues and users.
func (c *Client) ConversationsDuring(ctx context.Context, from, to time.Time, queues, users []string) ([]string, error) {
	if !from.Before(to) {
		return nil, nil
	}
	type pred struct{ dim, id string }
	var preds []pred
	for _, q := range queues {
		preds = append(preds, pred{"queueId", q})
	}
	for _, u := range users {
		preds = append(preds, pred{"userId", u})
	}
	interval := from.UTC().Format("2006-01-02T15:04:05.000Z") + "/" + to.UTC().Format("2006-01-02T15:04:05.000Z")
	seen := map[string]bool{}
	var ids []string
	for len(preds) > 0 {
		chunk := preds[:min(len(preds), queryPredicates)]
		preds = preds[len(chunk):]
		ps := make([]platformclientv2.Segmentdetailquerypredicate, len(chunk))
		for i, p := range chunk {
			ps[i] = platformclientv2.Segmentdetailquerypredicate{VarType: ptr("dimension"), Dimension: ptr(p.dim), Operator: ptr("matches"), Value: ptr(p.id)}
		}
		for page := 1; ; page++ {
			if page > queryPages {
				return ids, fmt.Errorf("genesys: conversations during %s: more than %d pages", interval, queryPages)
			}
			body := platformclientv2.Conversationquery{
				Interval:       ptr(interval),
				Order:          ptr("asc"),
				OrderBy:        ptr("conversationStart"),
				SegmentFilters: &[]platformclientv2.Segmentdetailqueryfilter{{VarType: ptr("or"), Predicates: &ps}},
				Paging:         &platformclientv2.Pagingspec{PageSize: ptr(queryPageSize), PageNumber: ptr(page)},
			}
			raw, err := c.postJSON(ctx, "query conversation details", "/api/v2/analytics/conversations/details/query", nil, body)
			if err != nil {
				return ids, err
			}
			var resp struct {
				Conversations []struct {
					ID string `json:"conversationId"`
				} `json:"conversations"`
			}
			if err := json.Unmarshal(raw, &resp); err != nil {
				return ids, fmt.Errorf("genesys: conversation details query: %w", err)
			}
			for _, cv := range resp.Conversations {
				if cv.ID != "" && !seen[cv.ID] {
					seen[cv.ID] = true
					ids = append(ids, cv.ID)
				}
			}
			if len(resp.Conversations) < queryPageSize {
				break
			}
		}
	}
	return ids, nil
}

func ptr[T any](v T) *T { return &v }

// subjects returns the queue and user ids of the conversation topics.
func subjects(topics []string) (queues, users []string) {
	for _, t := range topics {
		switch {
		case strings.HasPrefix(t, "v2.routing.queues.") && strings.HasSuffix(t, ".conversations"):
			queues = append(queues, strings.TrimSuffix(strings.TrimPrefix(t, "v2.routing.queues."), ".conversations"))
		case strings.HasPrefix(t, "v2.users.") && strings.HasSuffix(t, ".conversations"):
			users = append(users, strings.TrimSuffix(strings.TrimPrefix(t, "v2.users."), ".conversations"))
		}
	}
	return queues, users
}

// gap is a span without a connected socket whose conversations are still
// to be looked up: at once, then again after AnalyticsLag.
type gap struct {
	from, to time.Time
	due      time.Time // zero: now
	again    bool      // the first lookup is done
	fails    int
	restart  bool // the downtime before Run (Backfill): bounded by the engine, not LookBack
}

// gapMargin widens a gap's start: the lost socket's last frame is only
// roughly when it went deaf.
const gapMargin = 5 * time.Second

// addGap queues g for lookup.
func (s *Source) addGap(g gap) {
	s.mu.Lock()
	s.gaps = append(s.gaps, g)
	s.mu.Unlock()
	select {
	case s.gapSig <- struct{}{}:
	default:
	}
}

// lookupGaps looks up the gaps that are due and fetches the conversations
// found that the source was not tracking; a failed lookup or fetch is
// tried again with backoff. It returns when the next gap is due (zero:
// none left).
func (s *Source) lookupGaps(ctx context.Context) time.Time {
	now := time.Now()
	s.mu.Lock()
	var due []gap
	s.gaps = slices.DeleteFunc(s.gaps, func(g gap) bool {
		if g.due.After(now) {
			return false
		}
		due = append(due, g)
		return true
	})
	s.looking = due
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.looking = nil
		s.mu.Unlock()
	}()
	queues, users := subjects(s.topics)
	for i, g := range due {
		from := g.from.Add(-gapMargin)
		if oldest := time.Now().Add(-s.timing.LookBack); from.Before(oldest) && !g.restart {
			if !g.to.After(oldest) {
				s.log.Warn("genesys: a notification gap is older than Timing.LookBack; not looked up",
					"from", g.from, "to", g.to, "look_back", s.timing.LookBack)
				continue
			}
			if !g.again {
				s.log.Warn("genesys: a notification gap is longer than Timing.LookBack; looking up its last part only",
					"from", g.from, "to", g.to, "look_back", s.timing.LookBack)
			}
			from = oldest
		}
		ids, err := s.client.ConversationsDuring(ctx, from, g.to, queues, users)
		if err == nil && s.fetch(ctx, ids, true) > 0 {
			err = errors.New("some conversations could not be fetched")
		}
		switch {
		case ctx.Err() != nil:
			// Stopping: the unfinished gaps stay pending (PendingSince).
			s.mu.Lock()
			s.gaps = append(s.gaps, due[i:]...)
			s.mu.Unlock()
			return time.Time{}
		case err != nil:
			g.fails++
			g.due = time.Now().Add(s.backoff(g.fails))
			s.log.Warn("genesys: looking up the conversations started during a notification gap failed; will retry",
				"from", g.from, "to", g.to, "in", time.Until(g.due).Round(time.Millisecond), "error", err)
		case g.again:
			continue // done
		default:
			// The analytics index lags: look again once it has caught up.
			g.again, g.fails, g.due = true, 0, g.to.Add(AnalyticsLag)
		}
		s.mu.Lock()
		s.gaps = append(s.gaps, g)
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, g := range s.gaps {
		if next.IsZero() || g.due.Before(next) {
			next = g.due
		}
	}
	return next
}

// PendingSince implements cti.PendingLookups: the start of the oldest gap
// (or Backfill span) whose look-up is not finished, its second look after
// AnalyticsLag included; zero when none is. The engine marks its alive
// time no later than that, so a restart looks the span up again.
func (s *Source) PendingSince() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.since
	for _, gs := range [][]gap{s.gaps, s.looking} {
		for _, g := range gs {
			if from := g.from.Add(-gapMargin); t.IsZero() || from.Before(t) {
				t = from
			}
		}
	}
	return t
}

// Backfill implements cti.Backfiller: once its first socket is connected,
// the source looks up the conversations of its queues and users since
// since (at most Timing.TrackFor ago), like after a gap, and fetches
// those it does not know. Call it before Run.
func (s *Source) Backfill(since time.Time) {
	if since.IsZero() {
		return
	}
	if oldest := time.Now().Add(-s.timing.TrackFor); since.Before(oldest) {
		s.log.Warn("genesys: the engine last ran longer ago than TrackFor; looking back TrackFor only",
			"last_ran", since, "track_for", s.timing.TrackFor)
		since = oldest
	}
	s.mu.Lock()
	if s.since.IsZero() || since.Before(s.since) {
		s.since = since
	}
	s.mu.Unlock()
}

// takeSince returns the Backfill time, once.
func (s *Source) takeSince() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.since
	s.since = time.Time{}
	return t
}
