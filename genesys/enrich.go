package genesys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/mypurecloud/platform-client-sdk-go/v157/platformclientv2"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// Summary is an AI summary of a conversation.
type Summary struct {
	Text string
	// Source names the engine ("genesys", "openai", ...); it lands in
	// cti.Content.SummarySource.
	Source string
}

// Summarizer writes a summary of a finished conversation, with any AI
// engine. It is given the conversation with its content already enriched
// (transcript, email bodies). Return an empty Summary for "nothing to say";
// a retryable error (see cti.IsRetryable) to be asked again later. Safe
// for concurrent use.
type Summarizer interface {
	Summarize(ctx context.Context, c *cti.Conversation) (Summary, error)
}

// SummarizerFunc adapts a function to Summarizer.
type SummarizerFunc func(ctx context.Context, c *cti.Conversation) (Summary, error)

// Summarize calls f(ctx, c).
func (f SummarizerFunc) Summarize(ctx context.Context, c *cti.Conversation) (Summary, error) {
	return f(ctx, c)
}

// EnrichParts selects what an Enricher fetches.
type EnrichParts struct {
	// Names: user name and email, queue names, wrap-up code name and
	// category (its division), campaign name.
	Names bool
	// Analytics: times, wrap-up durations and transfers from the analytics
	// conversation details, where the snapshots left gaps.
	Analytics bool
	// Recording: the recording link (voice and callbacks).
	Recording bool
	// Content: email subject and body and the agent's reply; chat and
	// messaging transcripts.
	Content bool
	// Summary: the Genesys AI summary, else the Summarizer's.
	Summary bool
}

// AllParts fetches everything.
var AllParts = EnrichParts{Names: true, Analytics: true, Recording: true, Content: true, Summary: true}

// EnrichOption configures an Enricher.
type EnrichOption func(*Enricher) error

// WithSummarizer adds an AI summarizer, used when Genesys has no summary
// of the conversation (or always, with preferred).
func WithSummarizer(s Summarizer, preferred bool) EnrichOption {
	return func(e *Enricher) error { e.sum, e.sumFirst = s, preferred; return nil }
}

// WithEnrichParts selects what is fetched (default AllParts).
func WithEnrichParts(p EnrichParts) EnrichOption {
	return func(e *Enricher) error { e.parts = p; return nil }
}

// WithNameTTL sets how long names (users, queues, codes, campaigns) are
// cached (default 1 hour).
func WithNameTTL(d time.Duration) EnrichOption {
	return func(e *Enricher) error {
		if d <= 0 {
			return errors.New("genesys: WithNameTTL: must be positive")
		}
		e.ttl = d
		return nil
	}
}

// WithEnrichLogger sets the enricher's logger (nil: silence).
func WithEnrichLogger(l *slog.Logger) EnrichOption {
	return func(e *Enricher) error { e.log = l; return nil }
}

// Enricher is the cti.Enricher for Genesys Cloud: it fills a conversation
// in place with names (agents, queues, wrap-up codes and their category,
// campaign) and, once it ended, analytics times and transfers, the
// recording and interaction links, email bodies, transcripts and an AI
// summary.
//
// Lookups are cached (names for the name TTL, end-of-conversation data per
// conversation) and concurrent identical lookups share one call
// (singleflight). A transient failure of any part returns a retryable
// error (a *cti.UpstreamError with Status and RetryAfter) after filling
// what it could; the parts that succeeded are not fetched again. Missing
// data (no recording, no summary, a permission the OAuth client lacks) is
// not an error. Safe for concurrent use.
type Enricher struct {
	client   *Client
	log      *slog.Logger
	sum      Summarizer
	sumFirst bool
	parts    EnrichParts
	ttl      time.Duration
	sf       singleflight.Group

	mu     sync.Mutex
	names  map[string]nameEntry
	denied map[string]bool // kinds of name the OAuth client may not read (warned once)
	ends   map[string]*endData
	order  []string // ends keys, oldest first (bounded)
}

var _ cti.Enricher = (*Enricher)(nil)

type nameEntry struct {
	name, email, category string
	at                    time.Time
	missing               bool // 404: the object is gone (403: not ours to read)
}

// namePermission is the permission a kind of name lookup needs.
var namePermission = map[string]string{
	"user": "directory:user:view", "queue": "routing:queue:view",
	"code": "routing:wrapupCode:view", "campaign": "outbound:campaign:view",
}

// endData is what was fetched about a finished conversation.
// Its mutex serializes the end-of-conversation part of concurrent Enrich
// calls for one conversation.
type endData struct {
	mu                                     sync.Mutex
	analytics, recording, content, summary bool // fetched
	a                                      *analyticsConv
	recordingID                            string
	ct                                     cti.Content
	sum                                    Summary
}

const maxEnds = 4096

// NewEnricher builds an enricher on client.
func NewEnricher(client *Client, opts ...EnrichOption) (*Enricher, error) {
	if client == nil {
		return nil, errors.New("genesys: NewEnricher: nil Client")
	}
	e := &Enricher{client: client, parts: AllParts, ttl: time.Hour, names: map[string]nameEntry{}, ends: map[string]*endData{}}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	if e.log == nil {
		e.log = client.log
	}
	return e, nil
}

// Enrich implements cti.Enricher.
func (e *Enricher) Enrich(ctx context.Context, c *cti.Conversation) error {
	if c == nil || c.ID == "" {
		return nil
	}
	var errs []error
	keep := func(what string, err error) {
		if err == nil {
			return
		}
		if cti.IsRetryable(err) || errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("enrich %s: %w", what, err))
			return
		}
		e.log.Debug("genesys: enrichment skipped", "conversation", c.ID, "part", what, "error", err)
	}
	if e.parts.Names {
		keep("names", e.fillNames(ctx, c))
	}
	c.Links.InteractionURL = e.client.cfg.InteractionURL(c.ID)
	end := e.end(c.ID)
	end.mu.Lock()
	e.enrichEnd(ctx, c, end, keep)
	end.mu.Unlock()
	if e.parts.Names && c.Ended() {
		// Analytics may have added transfers and wrap-ups (cached lookups).
		keep("names", e.fillNames(ctx, c))
	}
	return errors.Join(errs...)
}

// enrichEnd fills the recording link (as soon as there is a recording:
// an agent who leaves a call that goes on is synced before its end) and,
// once the conversation ended, the end-of-conversation data; end.mu is
// held.
func (e *Enricher) enrichEnd(ctx context.Context, c *cti.Conversation, end *endData, keep func(string, error)) {
	done := func(err error) bool { return err == nil || !cti.IsRetryable(err) }
	if e.parts.Recording && (c.Media == cti.MediaVoice || c.Media == cti.MediaCallback) {
		if !end.recording {
			id, err := e.recording(ctx, c.ID)
			keep("recording", err)
			// No recording yet on a live call: look again next time.
			end.recording, end.recordingID = done(err) && (id != "" || c.Ended()), id
		}
		if end.recordingID != "" {
			c.Links.RecordingURL = e.client.cfg.APIBase() + "/api/v2/conversations/" + url.PathEscape(c.ID) + "/recordings/" + url.PathEscape(end.recordingID)
		}
	}
	if !c.Ended() {
		return
	}
	if e.parts.Analytics && !end.analytics {
		a, err := e.analytics(ctx, c.ID)
		if isStatus(err, http.StatusNotFound) && time.Since(c.EndTime) < AnalyticsLag {
			// Analytics has not indexed the conversation yet: try again
			// shortly rather than sync without its times and transfers.
			err = &cti.UpstreamError{Service: "genesys", Op: "analytics details", Status: http.StatusNotFound,
				Temporary: true, RetryAfter: 10 * time.Second, Err: err}
		}
		keep("analytics", err)
		end.analytics, end.a = done(err), a
	}
	if end.a != nil {
		applyAnalytics(c, end.a)
	}
	if e.parts.Content && !end.content {
		ct, err := e.content(ctx, c, end.a)
		keep("content", err)
		end.content, end.ct = done(err), ct
		if err == nil && ct.Transcript == "" && (c.Media == cti.MediaVoice || c.Media == cti.MediaCallback) &&
			time.Since(c.EndTime) < TranscriptLag {
			// Speech analytics transcribes a call after it ends: look
			// again when asked again (a sink waiting for late data).
			end.content = false
		}
	}
	mergeContent(&c.Content, end.ct)
	if e.parts.Summary && !end.summary {
		sm, err := e.summarize(ctx, c)
		keep("summary", err)
		end.summary, end.sum = done(err), sm
	}
	if end.sum.Text != "" && c.Content.Summary == "" {
		c.Content.Summary, c.Content.SummarySource = end.sum.Text, end.sum.Source
	}
}

func (e *Enricher) end(id string) *endData {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.ends[id]
	if d == nil {
		d = &endData{}
		e.ends[id] = d
		e.order = append(e.order, id)
		if len(e.order) > maxEnds {
			delete(e.ends, e.order[0])
			e.order = e.order[1:]
		}
	}
	return d
}

// FillAgents sets what rules and the directory need at pop time, which
// notification frames do not carry: the name and email of every agent leg,
// and the names of the queues and the campaign (rules may name them). Each
// comes from the cache or a (shared) lookup. Lookup failures leave the
// fields as they are and are returned.
func (e *Enricher) FillAgents(ctx context.Context, c *cti.Conversation) error {
	var errs []error
	lookup := func(kind, id string) (nameEntry, bool) {
		if id == "" {
			return nameEntry{}, false
		}
		n, err := e.name(ctx, kind, id)
		if err != nil {
			errs = append(errs, err)
			return nameEntry{}, false
		}
		return n, !n.missing
	}
	queue := func(r *cti.Ref) {
		if r.Name == "" {
			if n, ok := lookup("queue", r.ID); ok {
				r.Name = n.name
			}
		}
	}
	for i := range c.Agents {
		l := &c.Agents[i]
		queue(&l.Queue)
		if l.UserID == "" || (l.Name != "" && l.Email != "") {
			continue
		}
		if n, ok := lookup("user", l.UserID); ok {
			if l.Name == "" {
				l.Name = n.name
			}
			if l.Email == "" {
				l.Email = n.email
			}
		}
	}
	queue(&c.Queue)
	if c.Campaign.Name == "" {
		if n, ok := lookup("campaign", c.Campaign.ID); ok {
			c.Campaign.Name = n.name
		}
	}
	return errors.Join(errs...)
}

// --- names ---

// name returns the cached or fetched entry for kind:id.
func (e *Enricher) name(ctx context.Context, kind, id string) (nameEntry, error) {
	key := kind + ":" + id
	e.mu.Lock()
	n, ok := e.names[key]
	e.mu.Unlock()
	if ok && time.Since(n.at) < e.ttl {
		return n, nil
	}
	v, err, _ := e.sf.Do(key, func() (any, error) {
		n, err := e.fetchName(ctx, kind, id)
		switch {
		case err == nil:
		case isStatus(err, http.StatusNotFound):
			n, err = nameEntry{missing: true}, nil
		case isStatus(err, http.StatusForbidden):
			// A permission the OAuth client lacks: asking again for every
			// frame would not help (and would spend the API budget).
			e.mu.Lock()
			first := !e.denied[kind]
			if e.denied == nil {
				e.denied = map[string]bool{}
			}
			e.denied[kind] = true
			e.mu.Unlock()
			if first {
				e.log.Warn("genesys: the OAuth client may not read "+kind+" names: they are left out (grant "+namePermission[kind]+")",
					"error", err)
			}
			n, err = nameEntry{missing: true}, nil
		}
		if err != nil {
			return nameEntry{}, err
		}
		n.at = time.Now()
		e.mu.Lock()
		e.names[key] = n
		e.mu.Unlock()
		return n, nil
	})
	if err != nil {
		return nameEntry{}, err
	}
	return v.(nameEntry), nil
}

type apiCall = func(cfg *platformclientv2.Configuration) (*platformclientv2.APIResponse, error)

func (e *Enricher) fetchName(ctx context.Context, kind, id string) (nameEntry, error) {
	var op string
	var f apiCall
	switch kind {
	case "user":
		op, f = "get user", func(cfg *platformclientv2.Configuration) (*platformclientv2.APIResponse, error) {
			_, r, err := platformclientv2.NewUsersApiWithConfig(cfg).GetUser(id, nil, "", "")
			return r, err
		}
	case "queue":
		op, f = "get queue", func(cfg *platformclientv2.Configuration) (*platformclientv2.APIResponse, error) {
			_, r, err := platformclientv2.NewRoutingApiWithConfig(cfg).GetRoutingQueue(id)
			return r, err
		}
	case "code":
		op, f = "get wrap-up code", func(cfg *platformclientv2.Configuration) (*platformclientv2.APIResponse, error) {
			_, r, err := platformclientv2.NewRoutingApiWithConfig(cfg).GetRoutingWrapupcode(id)
			return r, err
		}
	case "campaign":
		op, f = "get campaign", func(cfg *platformclientv2.Configuration) (*platformclientv2.APIResponse, error) {
			_, r, err := platformclientv2.NewOutboundApiWithConfig(cfg).GetOutboundCampaign(id)
			return r, err
		}
	default:
		return nameEntry{}, fmt.Errorf("genesys: unknown lookup %q", kind)
	}
	raw, err := e.client.call(ctx, op+" "+id, f)
	if err != nil {
		return nameEntry{}, err
	}
	var v struct {
		Name     string `json:"name"`
		Email    string `json:"email"`
		Division struct {
			Name string `json:"name"`
		} `json:"division"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nameEntry{}, fmt.Errorf("genesys: %s: %w", op, err)
	}
	n := nameEntry{name: v.Name, email: v.Email}
	if kind == "code" {
		n.category = v.Division.Name
	}
	return n, nil
}

// fillNames looks up every name the conversation lacks, in parallel.
func (e *Enricher) fillNames(ctx context.Context, c *cti.Conversation) error {
	type want struct{ kind, id string }
	var wants []want
	add := func(kind, id string) {
		if id != "" && !slices.Contains(wants, want{kind, id}) {
			wants = append(wants, want{kind, id})
		}
	}
	for i := range c.Agents {
		l := &c.Agents[i]
		if l.Name == "" || l.Email == "" {
			add("user", l.UserID)
		}
		if l.Queue.Name == "" {
			add("queue", l.Queue.ID)
		}
		if w := l.Wrapup; w != nil && (w.Name == "" || w.Category == "") {
			add("code", w.Code)
		}
	}
	if c.Queue.Name == "" {
		add("queue", c.Queue.ID)
	}
	if c.Campaign.Name == "" {
		add("campaign", c.Campaign.ID)
	}
	for _, t := range c.Transfers {
		if t.FromUser.Name == "" {
			add("user", t.FromUser.ID)
		}
		if t.ToUser.Name == "" {
			add("user", t.ToUser.ID)
		}
		if t.ToQueue.Name == "" {
			add("queue", t.ToQueue.ID)
		}
	}
	if len(wants) == 0 {
		return nil
	}
	got := make([]nameEntry, len(wants))
	errs := make([]error, len(wants))
	var g errgroup.Group
	g.SetLimit(4)
	for i, w := range wants {
		g.Go(func() error {
			got[i], errs[i] = e.name(ctx, w.kind, w.id)
			return nil
		})
	}
	_ = g.Wait()
	look := func(kind, id string) (nameEntry, bool) {
		i := slices.Index(wants, want{kind, id})
		if i < 0 || errs[i] != nil || got[i].missing {
			return nameEntry{}, false
		}
		return got[i], true
	}
	setName := func(r *cti.Ref, kind string) {
		if r.Name == "" {
			if n, ok := look(kind, r.ID); ok {
				r.Name = n.name
			}
		}
	}
	for i := range c.Agents {
		l := &c.Agents[i]
		if n, ok := look("user", l.UserID); ok {
			if l.Name == "" {
				l.Name = n.name
			}
			if l.Email == "" {
				l.Email = n.email
			}
		}
		setName(&l.Queue, "queue")
		if w := l.Wrapup; w != nil {
			if n, ok := look("code", w.Code); ok {
				if w.Name == "" {
					w.Name = n.name
				}
				if w.Category == "" {
					w.Category = n.category
				}
			}
		}
	}
	setName(&c.Queue, "queue")
	setName(&c.Campaign, "campaign")
	for i := range c.Transfers {
		t := &c.Transfers[i]
		setName(&t.FromUser, "user")
		setName(&t.ToUser, "user")
		setName(&t.ToQueue, "queue")
	}
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return errors.Join(out...)
}

// --- analytics ---

// TranscriptLag is how long after a call's end the Enricher keeps looking
// for its speech analytics transcript when asked again (Genesys transcribes
// a call minutes after it ends); a sink that waits for late data (see
// syncmap.WithLateData) asks again.
const TranscriptLag = 10 * time.Minute

// AnalyticsLag is how long after a conversation's end a 404 from the
// analytics conversation details means "not indexed yet" (a retryable
// error, Retry-After 10 s) rather than "no details".
const AnalyticsLag = 2 * time.Minute

type analyticsConv struct {
	ConversationStart    wtime              `json:"conversationStart"`
	ConversationEnd      wtime              `json:"conversationEnd"`
	OriginatingDirection string             `json:"originatingDirection"`
	Participants         []analyticsPartcpt `json:"participants"`
}

type analyticsPartcpt struct {
	ParticipantID   string `json:"participantId"`
	ParticipantName string `json:"participantName"`
	Purpose         string `json:"purpose"`
	UserID          string `json:"userId"`
	Sessions        []struct {
		SessionID          string `json:"sessionId"`
		MediaType          string `json:"mediaType"`
		OutboundCampaignID string `json:"outboundCampaignId"`
		// A supervisor's session listening in on or coaching another
		// participant.
		MonitoredParticipantID string `json:"monitoredParticipantId"`
		CoachedParticipantID   string `json:"coachedParticipantId"`
		Segments               []struct {
			SegmentType    string   `json:"segmentType"`
			SegmentStart   wtime    `json:"segmentStart"`
			SegmentEnd     wtime    `json:"segmentEnd"`
			QueueID        string   `json:"queueId"`
			DisconnectType string   `json:"disconnectType"`
			WrapUpCode     string   `json:"wrapUpCode"`
			WrapUpNote     string   `json:"wrapUpNote"`
			WrapUpTags     []string `json:"wrapUpTags"`
		} `json:"segments"`
		Metrics []struct {
			Name  string `json:"name"`
			Value int64  `json:"value"`
		} `json:"metrics"`
	} `json:"sessions"`
}

func (e *Enricher) analytics(ctx context.Context, id string) (*analyticsConv, error) {
	raw, err := e.client.get(ctx, "get analytics conversation details", "/api/v2/analytics/conversations/"+url.PathEscape(id)+"/details")
	if err != nil {
		return nil, err
	}
	var a analyticsConv
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("genesys: analytics details: %w", err)
	}
	return &a, nil
}

// applyAnalytics fills what the snapshots left out: times, wrap-up
// duration, campaign, direction, and transfers when none were derived.
func applyAnalytics(c *cti.Conversation, a *analyticsConv) {
	if c.StartTime.IsZero() {
		c.StartTime = a.ConversationStart.Time
	}
	if c.EndTime.IsZero() {
		c.EndTime = a.ConversationEnd.Time
	}
	if c.Direction == "" {
		c.Direction = direction(a.OriginatingDirection)
	}
	var derived []cti.Transfer
	for pi := range a.Participants {
		p := &a.Participants[pi]
		for _, s := range p.Sessions {
			if c.Campaign.ID == "" && s.OutboundCampaignID != "" {
				c.Campaign.ID = s.OutboundCampaignID
			}
		}
		leg := c.Leg(p.ParticipantID)
		if leg == nil {
			continue
		}
		for _, s := range p.Sessions {
			for _, seg := range s.Segments {
				switch seg.SegmentType {
				case "alert":
					if leg.AlertTime.IsZero() {
						leg.AlertTime = seg.SegmentStart.Time
					}
				case "interact":
					if leg.ConnectedTime.IsZero() {
						leg.ConnectedTime = seg.SegmentStart.Time
					}
					if leg.EndTime.IsZero() {
						leg.EndTime = seg.SegmentEnd.Time
					}
					if kind, ok := cti.TransferKind(seg.DisconnectType); ok {
						t := cti.Transfer{At: seg.SegmentEnd.Time, FromUser: cti.Ref{ID: p.UserID}, Kind: kind}
						for _, n := range a.Participants[pi+1:] {
							if left, ok := n.leftAt(); ok && left.Before(t.At) && !n.routedOn() {
								continue // gone before the transfer (a failed consult); see transfers
							}
							if n.Purpose == "acd" && len(n.Sessions) > 0 && len(n.Sessions[0].Segments) > 0 {
								t.ToQueue = cti.Ref{ID: n.Sessions[0].Segments[0].QueueID}
								break
							}
							if (n.Purpose == "agent" || n.Purpose == "user") && !n.observer() {
								t.ToUser = cti.Ref{ID: n.UserID}
								break
							}
						}
						derived = append(derived, t)
					}
				case "wrapup":
					if leg.Wrapup == nil && seg.WrapUpCode != "" {
						leg.Wrapup = &cti.Wrapup{Code: seg.WrapUpCode, Notes: seg.WrapUpNote, Tags: slices.Clone(seg.WrapUpTags), EndTime: seg.SegmentEnd.Time}
					}
				}
			}
			for _, m := range s.Metrics {
				if m.Name == "tAcw" && leg.Wrapup != nil && leg.Wrapup.Duration == 0 {
					leg.Wrapup.Duration = time.Duration(m.Value) * time.Millisecond
				}
			}
		}
	}
	if len(c.Transfers) == 0 && len(derived) > 0 {
		c.Transfers = derived
	}
}

// observer reports whether p only listened in on or coached others (a
// supervisor), never a leg of the conversation.
func (p *analyticsPartcpt) observer() bool {
	for _, s := range p.Sessions {
		if s.MonitoredParticipantID == "" && s.CoachedParticipantID == "" {
			return false
		}
	}
	return len(p.Sessions) > 0
}

// leftAt is when p left the conversation: the end of its last segment
// other than wrap-up (after-call work goes on after it left); false while
// a segment is open, or without one.
func (p *analyticsPartcpt) leftAt() (time.Time, bool) {
	var left time.Time
	some := false
	for _, s := range p.Sessions {
		for _, seg := range s.Segments {
			if seg.SegmentType == "wrapup" {
				continue
			}
			if seg.SegmentEnd.IsZero() {
				return time.Time{}, false
			}
			some = true
			if seg.SegmentEnd.After(left) {
				left = seg.SegmentEnd.Time
			}
		}
	}
	return left, some
}

// routedOn reports whether p is a queue participant that handed the
// conversation on (a segment ended by transfer).
func (p *analyticsPartcpt) routedOn() bool {
	if p.Purpose != "acd" {
		return false
	}
	for _, s := range p.Sessions {
		for _, seg := range s.Segments {
			if _, ok := cti.TransferKind(seg.DisconnectType); ok {
				return true
			}
		}
	}
	return false
}

// --- recording ---

func (e *Enricher) recording(ctx context.Context, id string) (string, error) {
	raw, err := e.client.get(ctx, "get recording metadata", "/api/v2/conversations/"+url.PathEscape(id)+"/recordingmetadata")
	if err != nil {
		return "", err
	}
	var recs []struct {
		ID        string `json:"id"`
		FileState string `json:"fileState"`
	}
	if err := json.Unmarshal(raw, &recs); err != nil {
		return "", fmt.Errorf("genesys: recording metadata: %w", err)
	}
	for _, r := range recs {
		if r.ID != "" && !strings.EqualFold(r.FileState, "DELETED") {
			return r.ID, nil
		}
	}
	return "", nil
}

// --- content ---

func mergeContent(dst *cti.Content, src cti.Content) {
	set := func(d *string, v string) {
		if *d == "" {
			*d = v
		}
	}
	set(&dst.EmailSubject, src.EmailSubject)
	set(&dst.EmailBody, src.EmailBody)
	set(&dst.EmailText, src.EmailText)
	set(&dst.ReplySubject, src.ReplySubject)
	set(&dst.ReplyBody, src.ReplyBody)
	set(&dst.ReplyText, src.ReplyText)
	set(&dst.Transcript, src.Transcript)
}

func (e *Enricher) content(ctx context.Context, c *cti.Conversation, a *analyticsConv) (cti.Content, error) {
	switch c.Media {
	case cti.MediaVoice, cti.MediaCallback:
		return e.voiceTranscript(ctx, c, a)
	case cti.MediaEmail:
		return e.emailContent(ctx, c)
	case cti.MediaChat:
		return e.chatTranscript(ctx, c)
	case cti.MediaMessage:
		return e.messageTranscript(ctx, c)
	}
	return cti.Content{}, nil
}

type emailAddr struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

func (e *Enricher) emailContent(ctx context.Context, c *cti.Conversation) (cti.Content, error) {
	raw, err := e.client.get(ctx, "list email messages", "/api/v2/conversations/emails/"+url.PathEscape(c.ID)+"/messages")
	if err != nil {
		return cti.Content{}, err
	}
	var list struct {
		Entities []struct {
			ID   string    `json:"id"`
			From emailAddr `json:"from"`
			Time wtime     `json:"time"`
		} `json:"entities"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return cti.Content{}, fmt.Errorf("genesys: email messages: %w", err)
	}
	sort.SliceStable(list.Entities, func(i, j int) bool { return list.Entities[i].Time.Before(list.Entities[j].Time.Time) })
	cust := strings.ToLower(c.Customer.Email)
	var in, reply string
	for _, m := range list.Entities {
		fromCustomer := cust != "" && strings.EqualFold(m.From.Email, cust)
		switch {
		case in == "" && (fromCustomer || cust == "" && c.Direction != cti.Outbound):
			in = m.ID
		case !fromCustomer:
			reply = m.ID // the latest message from the org
		}
	}
	get := func(id string) (subject, html, text string, err error) {
		raw, err := e.client.get(ctx, "get email message", "/api/v2/conversations/emails/"+url.PathEscape(c.ID)+"/messages/"+url.PathEscape(id))
		if err != nil {
			return "", "", "", err
		}
		var m struct {
			Subject  string `json:"subject"`
			TextBody string `json:"textBody"`
			HTMLBody string `json:"htmlBody"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", "", "", fmt.Errorf("genesys: email message: %w", err)
		}
		return m.Subject, m.HTMLBody, m.TextBody, nil
	}
	var ct cti.Content
	if in != "" {
		if ct.EmailSubject, ct.EmailBody, ct.EmailText, err = get(in); err != nil {
			return cti.Content{}, err
		}
	}
	if reply != "" {
		if ct.ReplySubject, ct.ReplyBody, ct.ReplyText, err = get(reply); err != nil {
			return cti.Content{}, err
		}
	}
	return ct, nil
}

func (e *Enricher) speaker(c *cti.Conversation, participantID string, customer bool) string {
	if customer {
		if c.Customer.Name != "" {
			return c.Customer.Name
		}
		return "Customer"
	}
	if l := c.Leg(participantID); l != nil && l.Name != "" {
		return l.Name
	}
	return "Agent"
}

func transcriptLine(b *strings.Builder, at time.Time, who, text string) {
	if b.Len() > 0 {
		b.WriteByte('\n')
	}
	if !at.IsZero() {
		b.WriteString("[" + at.UTC().Format("15:04:05") + "] ")
	}
	b.WriteString(who + ": " + strings.TrimSpace(text))
}

// voiceTranscript reads the Speech and Text Analytics transcript of the
// customer's voice communications (GET /api/v2/speechandtextanalytics/
// conversations/{id}/communications/{communicationId}/transcripturl, then
// the pre-signed URL it returns), the communications found in the
// analytics details' sessions. No analytics details, or a 404 (speech
// analytics not enabled, or nothing transcribed), is no transcript.
func (e *Enricher) voiceTranscript(ctx context.Context, c *cti.Conversation, a *analyticsConv) (cti.Content, error) {
	if a == nil {
		return cti.Content{}, nil
	}
	var b strings.Builder
	for pi := range a.Participants {
		p := &a.Participants[pi]
		if p.Purpose != "customer" && p.Purpose != "external" {
			continue
		}
		for _, s := range p.Sessions {
			if s.MediaType != "voice" || s.SessionID == "" {
				continue
			}
			raw, err := e.client.get(ctx, "get transcript url", "/api/v2/speechandtextanalytics/conversations/"+
				url.PathEscape(c.ID)+"/communications/"+url.PathEscape(s.SessionID)+"/transcripturl")
			if isStatus(err, http.StatusNotFound) {
				continue
			}
			if err != nil {
				return cti.Content{}, err
			}
			var tu struct {
				URL string `json:"url"`
			}
			if err := json.Unmarshal(raw, &tu); err != nil {
				return cti.Content{}, fmt.Errorf("genesys: transcript url: %w", err)
			}
			if tu.URL == "" {
				continue
			}
			doc, err := e.client.download(ctx, "get transcript", tu.URL)
			if err != nil {
				return cti.Content{}, err
			}
			if err := e.voiceLines(&b, c, doc); err != nil {
				return cti.Content{}, err
			}
		}
	}
	return cti.Content{Transcript: b.String()}, nil
}

// voiceLines writes the phrases of a Speech and Text Analytics transcript
// document: participantPurpose external is the customer, internal the
// agent; startTimeMs is epoch milliseconds.
func (e *Enricher) voiceLines(b *strings.Builder, c *cti.Conversation, doc []byte) error {
	var t struct {
		Transcripts []struct {
			Phrases []struct {
				Text               string `json:"text"`
				StartTimeMs        int64  `json:"startTimeMs"`
				ParticipantPurpose string `json:"participantPurpose"`
			} `json:"phrases"`
		} `json:"transcripts"`
	}
	if err := json.Unmarshal(doc, &t); err != nil {
		return fmt.Errorf("genesys: transcript: %w", err)
	}
	agent := "" // the one agent, when there is one; else "Agent"
	if len(c.Agents) == 1 {
		agent = c.Agents[0].ID
	}
	for _, tr := range t.Transcripts {
		for _, ph := range tr.Phrases {
			if strings.TrimSpace(ph.Text) == "" {
				continue
			}
			var at time.Time
			if ph.StartTimeMs > 0 {
				at = time.UnixMilli(ph.StartTimeMs)
			}
			who := e.speaker(c, agent, ph.ParticipantPurpose != "internal")
			transcriptLine(b, at, who, ph.Text)
		}
	}
	return nil
}

// chatPage and chatPages bound a chat transcript: Genesys returns at most
// 100 messages a request; the next page starts after the last message.
const (
	chatPage  = 100
	chatPages = 50
)

func (e *Enricher) chatTranscript(ctx context.Context, c *cti.Conversation) (cti.Content, error) {
	var b strings.Builder
	after := ""
	for range chatPages {
		q := map[string]string{"sortOrder": "ascending", "maxResults": strconv.Itoa(chatPage)}
		if after != "" {
			q["after"] = after
		}
		raw, err := e.client.getQuery(ctx, "get chat messages", "/api/v2/conversations/chats/"+url.PathEscape(c.ID)+"/messages", q)
		if err != nil {
			return cti.Content{}, err
		}
		var list struct {
			Entities []struct {
				ID        string `json:"id"`
				Body      string `json:"body"`
				BodyType  string `json:"bodyType"`
				Timestamp wtime  `json:"timestamp"`
				Sender    struct {
					ID          string `json:"id"`
					DisplayName string `json:"displayName"`
					Role        string `json:"role"`
				} `json:"sender"`
			} `json:"entities"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return cti.Content{}, fmt.Errorf("genesys: chat messages: %w", err)
		}
		for _, m := range list.Entities {
			if m.BodyType != "" && m.BodyType != "standard" {
				continue // typing indicators, notices
			}
			who := m.Sender.DisplayName
			if who == "" {
				who = e.speaker(c, m.Sender.ID, strings.EqualFold(m.Sender.Role, "customer"))
			}
			transcriptLine(&b, m.Timestamp.Time, who, m.Body)
		}
		n := len(list.Entities)
		if n < chatPage || list.Entities[n-1].ID == "" || list.Entities[n-1].ID == after {
			break
		}
		after = list.Entities[n-1].ID
	}
	return cti.Content{Transcript: b.String()}, nil
}

func (e *Enricher) messageTranscript(ctx context.Context, c *cti.Conversation) (cti.Content, error) {
	raw, err := e.client.get(ctx, "get message conversation", "/api/v2/conversations/messages/"+url.PathEscape(c.ID))
	if err != nil {
		return cti.Content{}, err
	}
	var mc struct {
		Participants []struct {
			Messages []struct {
				MessageID string `json:"messageId"`
			} `json:"messages"`
		} `json:"participants"`
	}
	if err := json.Unmarshal(raw, &mc); err != nil {
		return cti.Content{}, fmt.Errorf("genesys: message conversation: %w", err)
	}
	var ids []string
	for _, p := range mc.Participants {
		for _, m := range p.Messages {
			if m.MessageID != "" && !slices.Contains(ids, m.MessageID) {
				ids = append(ids, m.MessageID)
			}
		}
	}
	if len(ids) == 0 {
		return cti.Content{}, nil
	}
	raw, err = e.client.postJSON(ctx, "get messages", "/api/v2/conversations/messages/"+url.PathEscape(c.ID)+"/messages/bulk",
		map[string]string{"useNormalizedMessage": "false"}, ids)
	if err != nil {
		return cti.Content{}, err
	}
	var list struct {
		Entities []struct {
			Timestamp wtime  `json:"timestamp"`
			Direction string `json:"direction"`
			TextBody  string `json:"textBody"`
			CreatedBy *struct {
				Name string `json:"name"`
			} `json:"createdBy"`
		} `json:"entities"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return cti.Content{}, fmt.Errorf("genesys: messages: %w", err)
	}
	sort.SliceStable(list.Entities, func(i, j int) bool { return list.Entities[i].Timestamp.Before(list.Entities[j].Timestamp.Time) })
	var b strings.Builder
	for _, m := range list.Entities {
		if m.TextBody == "" {
			continue
		}
		in := strings.EqualFold(m.Direction, "inbound")
		who := e.speaker(c, "", in)
		if !in {
			who = "Agent"
			if m.CreatedBy != nil && m.CreatedBy.Name != "" {
				who = m.CreatedBy.Name
			} else if n := agentNames(c); n != "" {
				who = n
			}
		}
		transcriptLine(&b, m.Timestamp.Time, who, m.TextBody)
	}
	return cti.Content{Transcript: b.String()}, nil
}

// agentNames is the name of the only agent, "" when several.
func agentNames(c *cti.Conversation) string {
	name := ""
	for _, l := range c.Agents {
		switch {
		case l.Name == "":
		case name == "":
			name = l.Name
		case name != l.Name:
			return ""
		}
	}
	return name
}

// --- summary ---

func (e *Enricher) summarize(ctx context.Context, c *cti.Conversation) (Summary, error) {
	custom := func() (Summary, error) {
		if e.sum == nil {
			return Summary{}, nil
		}
		s, err := e.sum.Summarize(ctx, c)
		if err != nil {
			return Summary{}, err
		}
		if s.Source == "" {
			s.Source = "custom"
		}
		return s, nil
	}
	if e.sumFirst {
		if s, err := custom(); err != nil || s.Text != "" {
			return s, err
		}
	}
	raw, err := e.client.get(ctx, "get conversation summaries", "/api/v2/conversations/"+url.PathEscape(c.ID)+"/summaries")
	switch {
	case err == nil:
		var v struct {
			Summary struct {
				Text          string `json:"text"`
				Status        string `json:"status"`
				EditedSummary *struct {
					Text string `json:"text"`
				} `json:"editedSummary"`
			} `json:"summary"`
		}
		if json.Unmarshal(raw, &v) == nil {
			text := v.Summary.Text
			if v.Summary.EditedSummary != nil && v.Summary.EditedSummary.Text != "" {
				text = v.Summary.EditedSummary.Text
			}
			if text != "" {
				return Summary{Text: text, Source: "genesys"}, nil
			}
		}
	case isStatus(err, http.StatusNotFound, http.StatusForbidden, http.StatusBadRequest):
		// The org has no AI summaries for it (or the client may not read them).
	default:
		return Summary{}, err
	}
	if !e.sumFirst {
		return custom()
	}
	return Summary{}, nil
}
