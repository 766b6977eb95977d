package genesystest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// detailsQuery is the part of a Conversationquery (POST
// /api/v2/analytics/conversations/details/query) the emulator evaluates.
type detailsQuery struct {
	Interval       string `json:"interval"`
	Order          string `json:"order"`
	SegmentFilters []struct {
		Type       string `json:"type"`
		Predicates []struct {
			Type      string `json:"type"`
			Dimension string `json:"dimension"`
			Operator  string `json:"operator"`
			Value     string `json:"value"`
		} `json:"predicates"`
	} `json:"segmentFilters"`
	Paging *struct {
		PageSize   int `json:"pageSize"`
		PageNumber int `json:"pageNumber"`
	} `json:"paging"`
}

// detailsQueryHandler implements POST
// /api/v2/analytics/conversations/details/query: the conversations that had
// activity during the interval (started before its end, not ended before
// its start) and match every segment filter — a filter of type "or"
// matches when one of its predicates does, "and" when all do; predicates on
// queueId and userId are evaluated (equality), others are rejected with a
// 400 as unsupported by the emulator. Ordered by conversationStart
// (ascending unless order is "desc"), paged (pageSize ≤ 100, default 25;
// pageNumber from 1). The answer is an Analyticsconversationqueryresponse
// whose conversations carry conversationId, conversationStart and, once
// ended, conversationEnd; an empty page has no conversations key and
// totalHits 0 is omitted, as Genesys does.
func (s *Server) detailsQueryHandler(w http.ResponseWriter, r *http.Request) {
	var q detailsQuery
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&q); err != nil {
		apiError(w, http.StatusBadRequest, "bad.request", "Unable to parse the query: "+err.Error())
		return
	}
	from, to, ok := parseInterval(q.Interval)
	if !ok {
		apiError(w, http.StatusBadRequest, "bad.request", "interval must be an ISO-8601 interval start/end, start before end")
		return
	}
	size, page := 25, 1
	if q.Paging != nil {
		if q.Paging.PageSize != 0 {
			size = q.Paging.PageSize
		}
		if q.Paging.PageNumber != 0 {
			page = q.Paging.PageNumber
		}
	}
	if size < 1 || size > 100 || page < 1 {
		apiError(w, http.StatusBadRequest, "bad.request", "paging.pageSize must be 1-100 and paging.pageNumber at least 1")
		return
	}
	for _, f := range q.SegmentFilters {
		if f.Type != "or" && f.Type != "and" {
			apiError(w, http.StatusBadRequest, "bad.request", "segmentFilters[].type must be and or or")
			return
		}
		for _, p := range f.Predicates {
			if p.Dimension != "queueId" && p.Dimension != "userId" {
				apiError(w, http.StatusBadRequest, "bad.request", "the emulator evaluates segment predicates on queueId and userId only, not "+p.Dimension)
				return
			}
			if p.Operator != "" && p.Operator != "matches" {
				apiError(w, http.StatusBadRequest, "bad.request", "the emulator evaluates the matches operator only")
				return
			}
		}
	}
	s.mu.Lock()
	var hits []*conversation
	for _, c := range s.convs {
		if !c.start.Before(to) || (!c.end.IsZero() && c.end.Before(from)) {
			continue
		}
		match := true
		for _, f := range q.SegmentFilters {
			n := 0
			for _, p := range f.Predicates {
				if c.has(p.Dimension, p.Value) {
					n++
				}
			}
			if (f.Type == "or" && n == 0) || (f.Type == "and" && n < len(f.Predicates)) {
				match = false
				break
			}
		}
		if match {
			hits = append(hits, c)
		}
	}
	slices.SortFunc(hits, func(a, b *conversation) int {
		if d := a.start.Compare(b.start); d != 0 {
			return d
		}
		return strings.Compare(a.id, b.id)
	})
	if strings.EqualFold(q.Order, "desc") {
		slices.Reverse(hits)
	}
	resp := map[string]any{}
	if len(hits) > 0 {
		resp["totalHits"] = len(hits)
	}
	var out []any
	for _, c := range hits[min(len(hits), (page-1)*size):min(len(hits), page*size)] {
		m := map[string]any{"conversationId": c.id, "conversationStart": c.start.UTC()}
		if !c.end.IsZero() {
			m["conversationEnd"] = c.end.UTC()
		}
		out = append(out, m)
	}
	s.mu.Unlock()
	if len(out) > 0 {
		resp["conversations"] = out
	}
	writeJSON(w, http.StatusOK, resp)
}

// has reports whether a participant of c is in queue id (dimension
// queueId) or is user id (userId).
func (c *conversation) has(dimension, id string) bool {
	for _, p := range c.participants {
		if (dimension == "queueId" && p.queueID == id) || (dimension == "userId" && p.userID == id) {
			return true
		}
	}
	return false
}

func parseInterval(s string) (from, to time.Time, ok bool) {
	a, b, found := strings.Cut(s, "/")
	if !found {
		return from, to, false
	}
	from, err1 := time.Parse(time.RFC3339Nano, a)
	to, err2 := time.Parse(time.RFC3339Nano, b)
	return from, to, err1 == nil && err2 == nil && from.Before(to)
}
