package syncmap

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// Format says how data points render times.
type Format struct {
	// Location is the time zone times render in (default UTC).
	Location *time.Location
	// Layout is the time layout (default DefaultLayout).
	Layout string
}

// DefaultLayout renders times like "2026-11-24 09:00:05 UTC".
const DefaultLayout = "2006-01-02 15:04:05 MST"

func (f Format) loc() *time.Location {
	if f.Location == nil {
		return time.UTC
	}
	return f.Location
}

func (f Format) layout() string {
	if f.Layout == "" {
		return DefaultLayout
	}
	return f.Layout
}

// Time renders t, or "" for the zero time.
func (f Format) Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(f.loc()).Format(f.layout())
}

// Data is what sync templates see: the standard data points of one agent's
// segment of a finished conversation, every one a string ("" when missing,
// never "<nil>"). Field names are the data point names of the Catalog.
type Data struct {
	ConversationID  string
	ConversationURL string
	Media           string // voice, callback, email, chat, message
	Channel         string // sms, whatsapp, ... for messaging
	Kind            string // the rule media key: voice, ..., sms, whatsapp, ...
	Direction       string

	PhoneNumber     string
	CustomerName    string
	CustomerEmail   string
	CustomerAddress string
	CustomerHandle  string

	AgentName   string
	AgentEmail  string
	AgentUserID string // Genesys user id

	QueueName    string
	QueueID      string
	CampaignName string
	CampaignID   string

	StartTime     string
	ConnectedTime string
	EndTime       string
	CallDuration  string // the customer's connected → end, h:mm:ss
	TalkTime      string // this agent's connected → end, h:mm:ss
	TransferredTo string
	TransferType  string // blind, consult, conference or forward (cti.TransferKind)

	WrapupCode     string // disposition id
	WrapupName     string // disposition
	WrapupCategory string // disposition category
	WrapupNotes    string

	RecordingURL string
	Transcript   string
	Summary      string // AI summary, any media
	ChatSummary  string // AI summary of a chat / message / email conversation
	CallSummary  string // AI summary of a voice / callback conversation

	EmailSubject string
	EmailBody    string
	EmailText    string
	ReplySubject string
	ReplyBody    string
	ReplyText    string

	// Attributes are the participant attributes (custom values).
	Attributes Attrs
	// Values are custom values computed from other data points and
	// attributes (WithComputed); {{.Value "Name"}}.
	Values Attrs

	// Raw values for helpers: {{time .Start "15:04"}}, {{duration .Duration}}.
	// They render empty when unknown.
	Start    Time
	Connect  Time
	End      Time
	Duration Duration
	Talk     Duration
}

// Time is a raw time data point: it renders as RFC 3339 in UTC, or empty
// when unknown, and has every method of time.Time ({{.Start.Year}}).
type Time struct{ time.Time }

// String renders t as RFC 3339, "" for the zero time.
func (t Time) String() string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Duration is a raw duration data point: it renders as h:mm:ss, or empty
// when zero, and has every method of time.Duration ({{.Duration.Seconds}}).
type Duration struct{ time.Duration }

// WholeSeconds is d rounded to the second: the value for a Zendesk integer
// field ({{.Duration.WholeSeconds}}), which refuses Seconds' fraction
// (Genesys times carry milliseconds).
func (d Duration) WholeSeconds() int64 { return int64(d.Round(time.Second) / time.Second) }

// String renders d as h:mm:ss, "" when zero.
func (d Duration) String() string {
	if d.Duration == 0 {
		return ""
	}
	return HMS(d.Duration)
}

// Attrs are named string values (participant attributes, computed
// values). A missing name reads as "": {{.Attributes.Name}}. It renders as
// "name=value" pairs sorted by name, "" when empty.
type Attrs map[string]string

// String renders the pairs sorted by name, separated by "; ".
func (a Attrs) String() string {
	keys := slices.Sorted(maps.Keys(a))
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(a[k])
	}
	return b.String()
}

// Attr returns a participant attribute, "" when absent:
// {{.Attr "AccountNumber"}}.
func (d *Data) Attr(name string) string { return d.Attributes[name] }

// Value returns a computed value (WithComputed) or, when there is none of
// that name, the participant attribute: {{.Value "Segment"}}.
func (d *Data) Value(name string) string {
	if v, ok := d.Values[name]; ok {
		return v
	}
	return d.Attributes[name]
}

// AttrOr returns a participant attribute or def when absent or empty.
func (d *Data) AttrOr(name, def string) string {
	if v := d.Attributes[name]; v != "" {
		return v
	}
	return def
}

// NewData computes the data points of a sync job.
func NewData(job *cti.SyncJob, f Format) *Data {
	d := &Data{ConversationID: job.ConversationID, Attributes: Attrs{}, Values: Attrs{}}
	c := job.Conversation
	if c == nil {
		return d
	}
	leg := c.Leg(job.LegID)
	d.ConversationID = c.ID
	d.ConversationURL = c.Links.InteractionURL
	d.Media, d.Channel, d.Kind, d.Direction = string(c.Media), string(c.Channel), c.Kind(), string(c.Direction)
	d.PhoneNumber = c.Customer.Phone
	d.CustomerName, d.CustomerEmail = c.Customer.Name, c.Customer.Email
	d.CustomerAddress, d.CustomerHandle = c.Customer.Address, c.Customer.Handle
	d.QueueName, d.QueueID = c.Queue.Name, c.Queue.ID
	if leg != nil && leg.Queue.ID != "" {
		d.QueueID = leg.Queue.ID
		d.QueueName = leg.Queue.Name
	}
	d.CampaignName, d.CampaignID = c.Campaign.Name, c.Campaign.ID
	d.Start, d.Connect, d.End = Time{c.StartTime}, Time{c.ConnectedTime}, Time{c.EndTime}
	d.StartTime, d.ConnectedTime, d.EndTime = f.Time(c.StartTime), f.Time(c.ConnectedTime), f.Time(c.EndTime)
	if !c.ConnectedTime.IsZero() {
		end := c.EndTime
		if end.IsZero() && leg != nil {
			end = leg.EndTime // this agent's segment ended before the conversation
		}
		if !end.IsZero() && end.After(c.ConnectedTime) {
			d.Duration = Duration{end.Sub(c.ConnectedTime)}
		}
		if !end.IsZero() {
			d.CallDuration = HMS(d.Duration.Duration)
		}
	}
	if leg != nil {
		d.AgentName, d.AgentEmail, d.AgentUserID = leg.Name, leg.Email, leg.UserID
		if !leg.ConnectedTime.IsZero() && leg.EndTime.After(leg.ConnectedTime) {
			d.Talk = Duration{leg.EndTime.Sub(leg.ConnectedTime)}
			d.TalkTime = HMS(d.Talk.Duration)
		}
		if w := leg.Wrapup; w != nil {
			d.WrapupCode, d.WrapupName, d.WrapupCategory, d.WrapupNotes = w.Code, w.Name, w.Category, w.Notes
		}
	}
	if job.Agent != nil {
		if d.AgentName == "" {
			d.AgentName = job.Agent.Name
		}
		if d.AgentEmail == "" {
			d.AgentEmail = job.Agent.Email
		}
	}
	d.TransferredTo, d.TransferType = transferredTo(c, leg)
	d.RecordingURL = c.Links.RecordingURL
	d.Transcript = c.Content.Transcript
	d.Summary = c.Content.Summary
	switch c.Media {
	case cti.MediaVoice, cti.MediaCallback:
		d.CallSummary = c.Content.Summary
	default:
		d.ChatSummary = c.Content.Summary
	}
	ct := c.Content
	d.EmailSubject, d.EmailBody, d.EmailText = ct.EmailSubject, ct.EmailBody, ct.EmailText
	d.ReplySubject, d.ReplyBody, d.ReplyText = ct.ReplySubject, ct.ReplyBody, ct.ReplyText
	d.Attributes = Attrs(maps.Clone(c.Attributes))
	if d.Attributes == nil {
		d.Attributes = Attrs{}
	}
	return d
}

// transferredTo names where the conversation went, and how: for a leg
// that transferred it, the destination and kind of that transfer (see
// legTransfer); otherwise every destination and every kind, in order.
func transferredTo(c *cti.Conversation, leg *cti.AgentLeg) (to, kind string) {
	name := func(t cti.Transfer) string {
		var parts []string
		if n := refName(t.ToQueue); n != "" {
			parts = append(parts, n)
		}
		if n := refName(t.ToUser); n != "" {
			parts = append(parts, n)
		}
		return strings.Join(parts, " / ")
	}
	if leg != nil && leg.Transferred() {
		if t, ok := legTransfer(c, leg); ok {
			return name(t), t.Kind
		}
	}
	// One entry per transfer in both lists, so that they line up.
	var all, kinds []string
	for _, t := range c.Transfers {
		n, k := name(t), t.Kind
		if n == "" && k == "" {
			continue
		}
		all, kinds = append(all, cmp.Or(n, "unknown")), append(kinds, cmp.Or(k, "unknown"))
	}
	return strings.Join(all, ", "), strings.Join(kinds, ", ")
}

// transferSkew is how much later than the leg's end its transfer may be
// timed (the two times can come from different Genesys sources).
const transferSkew = time.Second

// legTransfer is the transfer that ended leg: of the transfers from its
// agent, the first within the leg's time (its alert or connection to its
// end), since an agent who got the conversation back has a later leg with
// its own transfer. Without the times, the agent's last transfer.
func legTransfer(c *cti.Conversation, leg *cti.AgentLeg) (cti.Transfer, bool) {
	start, end := leg.AlertTime, leg.EndTime
	if start.IsZero() {
		start = leg.ConnectedTime
	}
	var (
		best, last  cti.Transfer
		found, seen bool
	)
	for _, t := range c.Transfers {
		if t.FromUser.ID != leg.UserID {
			continue
		}
		last, seen = t, true
		within := !t.At.IsZero() && (!start.IsZero() || !end.IsZero()) &&
			(start.IsZero() || !t.At.Before(start)) && (end.IsZero() || !t.At.After(end.Add(transferSkew)))
		if within && (!found || t.At.Before(best.At)) {
			best, found = t, true
		}
	}
	if found {
		return best, true
	}
	return last, seen
}

func refName(r cti.Ref) string {
	if r.Name != "" {
		return r.Name
	}
	return r.ID
}

// HMS renders a duration as h:mm:ss ("0:04:05"); negative is "0:00:00".
func HMS(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}
