package syncmap

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// Option configures a Mapper or a Sink (NewMapper ignores the options
// that only concern the sink).
type Option func(*config) error

type config struct {
	format     Format
	maxComment int
	computed   []computed
	log        *slog.Logger
	notify     func(Notice)
	talkApp    int64
	late       LatePolicy
	rate       int
	burst      int
	mapper     cti.FieldMapper
	now        func() time.Time
	settle     time.Duration
	fieldTries int
	recordings cti.RecordingOpener
}

type computed struct {
	name string
	text string
	t    *Template
}

// DefaultMaxComment is the largest comment body the sink writes, in bytes.
// Zendesk rejects comments much over 64 KB ("roughly 65,000 characters");
// longer ones are truncated with TruncatedMarker.
const DefaultMaxComment = 60_000

// TruncatedMarker ends a comment or field value that was cut to fit
// Zendesk's size limit; %d is the number of characters left out.
const TruncatedMarker = "\n[… truncated by ctikit: %d more characters not shown]"

func newConfig(opts []Option) (*config, error) {
	c := &config{
		maxComment: DefaultMaxComment,
		late:       DefaultLatePolicy,
		rate:       DefaultUpdateRate,
		burst:      10,
		now:        time.Now,
		settle:     DefaultBatchSettle,
		fieldTries: 5,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for i := range c.computed {
		t, err := ParseFormat("computed."+c.computed[i].name, c.computed[i].text, c.format)
		if err != nil {
			return nil, fmt.Errorf("syncmap: WithComputed %q: %w", c.computed[i].name, err)
		}
		c.computed[i].t = t
	}
	return c, nil
}

// WithFormat sets the time zone and layout data points render times in
// (default UTC, DefaultLayout). The reference server takes it from the
// rules file's time section (config.Time.Format()).
func WithFormat(f Format) Option {
	return func(c *config) error { c.format = f; return nil }
}

// WithMaxComment sets the largest comment body (and ticket field value),
// in bytes; longer ones are cut with TruncatedMarker. Default
// DefaultMaxComment.
func WithMaxComment(n int) Option {
	return func(c *config) error {
		if n < 200 {
			return errors.New("syncmap: WithMaxComment: want at least 200 bytes")
		}
		c.maxComment = n
		return nil
	}
}

// WithComputed adds a custom value computed from other data points and
// attributes, available to every template as {{.Value "name"}} (and
// {{.Values.name}}). Computed values are rendered in the order given; a
// later one may use an earlier one.
//
//	syncmap.WithComputed("Segment", `{{if eq (.Attr "Tier") "gold"}}vip{{else}}standard{{end}}`)
func WithComputed(name, template string) Option {
	return func(c *config) error {
		if name == "" {
			return errors.New("syncmap: WithComputed: empty name")
		}
		c.computed = append(c.computed, computed{name: name, text: template})
		return nil
	}
}

// WithLogger sets the logger; nil (the default) means silence.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.log = l; return nil }
}

// WithNotify sets a hook told about what the sink worked around: a ticket
// field Zendesk rejected (once per field id), a fallback to a new ticket, a
// truncated comment, a template that failed, late data given up on. It is
// called synchronously from sync goroutines and must be quick.
func WithNotify(f func(Notice)) Option {
	return func(c *config) error { c.notify = f; return nil }
}

// WithTalkApp makes the sink write voice and callback conversations as a
// Talk Partner Edition call record (POST /api/v2/calls) with its voice
// comment, for the Zendesk app appID (the ZAF app id). Without it, voice
// conversations get a ticket comment like other media.
func WithTalkApp(appID int64) Option {
	return func(c *config) error {
		if appID <= 0 {
			return errors.New("syncmap: WithTalkApp: the app id must be positive")
		}
		c.talkApp = appID
		return nil
	}
}

// WithLateData sets how long the sink waits for late data (recording,
// transcript, AI summary). Zero fields keep DefaultLatePolicy's.
func WithLateData(p LatePolicy) Option {
	return func(c *config) error {
		if p.Wait < 0 || p.Poll < 0 {
			return errors.New("syncmap: WithLateData: negative duration")
		}
		if p.Wait > 0 {
			c.late.Wait = p.Wait
		}
		if p.Poll > 0 {
			c.late.Poll = p.Poll
		}
		if p.Points != nil {
			c.late.Points = p.Points
		}
		return nil
	}
}

// DefaultUpdateRate is Zendesk's Update Ticket limit: 100 requests a
// minute per account.
const DefaultUpdateRate = 100

// WithUpdateRate paces the sink's ticket writes (updates, creates,
// update_many submissions, call records) to perMinute requests a minute,
// with bursts of burst. Leave room for agents: their updates in the UI
// count toward the same limit. Default DefaultUpdateRate, burst 10.
func WithUpdateRate(perMinute, burst int) Option {
	return func(c *config) error {
		if perMinute < 1 || burst < 1 {
			return errors.New("syncmap: WithUpdateRate: want a positive rate and burst")
		}
		c.rate, c.burst = perMinute, burst
		return nil
	}
}

// WithMapper replaces the sink's field mapper (default: NewMapper over the
// same rules and options).
func WithMapper(m cti.FieldMapper) Option {
	return func(c *config) error { c.mapper = m; return nil }
}

// DefaultBatchSettle is how long after start the sink holds back jobs
// left by a previous process: an update_many job that process submitted
// may still be running in Zendesk, and re-checking before it finishes
// could write twice.
const DefaultBatchSettle = 30 * time.Second

// WithBatchSettle sets DefaultBatchSettle's wait (0 disables it: only when
// the previous process never used update_many).
func WithBatchSettle(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return errors.New("syncmap: WithBatchSettle: negative duration")
		}
		c.settle = d
		return nil
	}
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("syncmap: WithClock(nil)")
		}
		c.now = now
		return nil
	}
}

// LatePolicy says how long to wait for late data.
type LatePolicy struct {
	// Wait bounds the wait, counted from when the sync was queued. Past
	// it the sync is written (or left) with what is known.
	Wait time.Duration
	// Poll is how often to look again.
	Poll time.Duration
	// Points are the late data points waited for before writing a ticket
	// comment. Nil means: those the rule's templates name (sync.fields and
	// sync.template). The default comment names none, though it shows
	// each that has come: an org without speech analytics or AI summaries
	// would otherwise hold every sync for Wait. A Talk Partner Edition
	// call record is written at once and updated, within Wait, when one
	// of these points comes; with none, it is written with what is known.
	// Set Points (e.g. LatePoints()) to wait for them all.
	Points []string
}

// DefaultLatePolicy waits up to 15 minutes, looking every minute.
var DefaultLatePolicy = LatePolicy{Wait: 15 * time.Minute, Poll: time.Minute}

// NoticeKind says what a Notice reports.
type NoticeKind string

// Notice kinds.
const (
	// NoticeFieldRejected: Zendesk rejected a ticket field (422); the rest
	// was synced without it. Reported once per field id.
	NoticeFieldRejected NoticeKind = "field_rejected"
	// NoticeTicketFallback: the target ticket was deleted or closed; the
	// sync went to another (new) ticket.
	NoticeTicketFallback NoticeKind = "ticket_fallback"
	// NoticeTruncated: a comment or field value was cut to fit Zendesk.
	NoticeTruncated NoticeKind = "truncated"
	// NoticeTemplate: a template failed at sync time; the field was left
	// out or the default comment used.
	NoticeTemplate NoticeKind = "template"
	// NoticeLateData: late data did not come within LatePolicy.Wait.
	NoticeLateData NoticeKind = "late_data"
	// NoticeRecording: a recording could not be hosted in Zendesk
	// (WithRecordingUpload); the sync was written without it.
	NoticeRecording NoticeKind = "recording"
)

// Notice reports something the sink worked around.
type Notice struct {
	Kind           NoticeKind
	Key            string // the sync job key
	ConversationID string
	Rule           string
	TicketID       int64
	FieldID        int64
	Message        string
}
