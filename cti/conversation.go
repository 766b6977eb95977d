package cti

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Media is the Genesys Cloud media type of a conversation.
type Media string

// The Genesys Cloud media types ctikit understands. Web messaging, SMS,
// WhatsApp, Facebook, Instagram, X (Twitter), LINE and open messaging are all
// MediaMessage, told apart by Channel.
const (
	MediaVoice    Media = "voice"
	MediaCallback Media = "callback"
	MediaEmail    Media = "email"
	MediaChat     Media = "chat"
	MediaMessage  Media = "message"
)

// Channel is the messaging platform of a MediaMessage conversation (the
// Genesys messageType). It is empty for other media.
type Channel string

// Messaging channels (Genesys messageType values).
const (
	ChannelSMS          Channel = "sms"
	ChannelWhatsApp     Channel = "whatsapp"
	ChannelFacebook     Channel = "facebook"
	ChannelInstagram    Channel = "instagram"
	ChannelTwitter      Channel = "twitter"
	ChannelLine         Channel = "line"
	ChannelWebMessaging Channel = "webmessaging"
	ChannelOpen         Channel = "open"
)

// WhatsAppNumber returns a WhatsApp address as a phone number to
// normalize: a WhatsApp id is the international number without its plus
// (33612345678), which a national reading could take for a number of the
// account's own country; the plus is put back. Anything else (a number
// with its plus, a tel: URI) is returned as is.
func WhatsAppNumber(addr string) string {
	s := strings.TrimSpace(addr)
	if len(s) < 8 || strings.TrimLeft(s, "0123456789") != "" || s[0] == '0' {
		return addr
	}
	return "+" + s
}

// Kinds lists, in documentation order, every value a rule's when.media
// accepts: the non-message media plus one kind per messaging channel.
// "message" is also accepted and matches every messaging channel.
var Kinds = []string{
	"voice", "callback", "email", "chat", "webmessaging", "sms", "whatsapp",
	"facebook", "instagram", "twitter", "line", "open",
}

// Direction is inbound (customer-initiated) or outbound.
type Direction string

// Directions.
const (
	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"
)

// Ref names a Genesys object: a queue, campaign, user or wrap-up code.
// Name may be empty until enrichment fills it.
type Ref struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// IsZero reports whether r names nothing.
func (r Ref) IsZero() bool { return r.ID == "" && r.Name == "" }

// Customer is the external party of a conversation.
type Customer struct {
	// Address is the address exactly as Genesys gave it: an ANI, a tel: or
	// sip: URI, an email address, a social handle or platform id.
	Address string `json:"address,omitempty"`
	// Phone is the normalized phone number (E.164 when it could be parsed)
	// when the address is a phone number (voice, callback, SMS, WhatsApp).
	Phone string `json:"phone,omitempty"`
	// Email is the customer's email address (email media, or known otherwise).
	Email string `json:"email,omitempty"`
	// Handle is the social identity on the conversation's channel
	// (a Facebook PSID, an X handle, a LINE user id, ...).
	Handle string `json:"handle,omitempty"`
	// Name is the display name Genesys has for the customer, if any.
	Name string `json:"name,omitempty"`
}

// LegState is the normalized state of an agent's communication.
type LegState string

// Leg states, in lifecycle order. Source adapters map vendor states onto
// these (Genesys "alerting", "offering", "dialing", "contacting" are
// LegAlerting; "connected" is LegConnected; "disconnected" and "terminated"
// are LegDisconnected).
const (
	LegAlerting     LegState = "alerting"
	LegConnected    LegState = "connected"
	LegDisconnected LegState = "disconnected"
)

// ACWState is the Genesys afterCallWork.state of an agent's communication.
type ACWState string

// After-call-work states as Genesys reports them.
const (
	ACWUnknown       ACWState = ""
	ACWPending       ACWState = "pending"
	ACWComplete      ACWState = "complete"
	ACWSkipped       ACWState = "skipped"
	ACWNotApplicable ACWState = "notApplicable"
)

// DisconnectTransfer is the disconnect type of a leg the agent transferred
// blind (straight to a queue or an agent). Genesys reports the other kinds
// of transfer as "transfer.<kind>": see TransferKind.
const DisconnectTransfer = "transfer"

// Transfer kinds: how the agent moved the conversation on.
const (
	TransferBlind      = "blind"      // straight to a queue or an agent ("transfer")
	TransferConsult    = "consult"    // after consulting the destination: attended ("transfer.consult")
	TransferConference = "conference" // the agent left a conference they had set up ("transfer.conference")
	TransferForward    = "forward"    // forwarded on by the agent's call forwarding ("transfer.forward")
)

// TransferKind reports whether a leg's disconnect type (Genesys's
// disconnectType, any case) says the agent transferred the conversation,
// and how. It takes the conversation APIs' names ("transfer.consult") and
// the analytics API's ("consultTransfer"). "transfer.noanswer",
// "transfer.notavailable" and "transfer.donotdisturb" (and their analytics
// names), the ACD routing an alert the agent did not take, are not
// transfers: the agent never had the conversation.
func TransferKind(disconnectType string) (kind string, ok bool) {
	switch strings.ToLower(disconnectType) {
	case DisconnectTransfer:
		return TransferBlind, true
	case "transfer.consult", "consulttransfer":
		return TransferConsult, true
	case "transfer.conference", "conferencetransfer":
		return TransferConference, true
	case "transfer.forward", "forwardtransfer":
		return TransferForward, true
	}
	return "", false
}

// Wrapup is an agent's wrap-up of a conversation.
type Wrapup struct {
	Code     string        `json:"code,omitempty"`     // wrap-up code id
	Name     string        `json:"name,omitempty"`     // wrap-up code name (enriched)
	Category string        `json:"category,omitempty"` // the code's category / division (enriched)
	Notes    string        `json:"notes,omitempty"`
	Tags     []string      `json:"tags,omitempty"`
	Duration time.Duration `json:"duration,omitempty"` // time spent in wrap-up
	EndTime  time.Time     `json:"endTime,omitzero"`
}

// AgentLeg is one agent participant of a conversation: an agent who was
// offered the conversation, with their own timeline and wrap-up. An agent
// who gets the same conversation twice (transferred back) has two legs.
type AgentLeg struct {
	// ID identifies the leg within the conversation (the Genesys
	// participant id). Engine state is kept per (conversation, leg).
	ID     string `json:"id"`
	UserID string `json:"userId,omitempty"` // Genesys user id
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
	Queue  Ref    `json:"queue,omitzero"` // the queue the leg was routed from

	State          LegState  `json:"state,omitempty"`
	DisconnectType string    `json:"disconnectType,omitempty"`
	AlertTime      time.Time `json:"alertTime,omitzero"`
	ConnectedTime  time.Time `json:"connectedTime,omitzero"`
	EndTime        time.Time `json:"endTime,omitzero"`

	// WrapupExpected says a wrap-up (or after-call work) will follow the
	// disconnect. When false the engine syncs after a grace period.
	WrapupExpected bool     `json:"wrapupExpected,omitempty"`
	Wrapup         *Wrapup  `json:"wrapup,omitempty"`
	ACW            ACWState `json:"acw,omitempty"`
}

// Phase is the lifecycle position of an agent leg. Phases only move forward.
type Phase uint8

// Phases of an agent leg.
const (
	PhaseNone         Phase = iota
	PhaseOffered            // alerting to the agent
	PhaseConnected          // the agent is talking / handling
	PhaseDisconnected       // the agent left (hung up, transferred, ...)
	PhaseDone               // wrap-up submitted and after-call work complete
)

var phaseNames = [...]string{"none", "offered", "connected", "disconnected", "done"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// Phase derives the leg's phase from its state, wrap-up and after-call work.
// A leg is done when it is disconnected, a wrap-up is submitted, and
// after-call work is not pending. Legs with no expected wrap-up become done
// through the engine's grace period, not here.
func (l *AgentLeg) Phase() Phase {
	switch l.State {
	case LegAlerting:
		return PhaseOffered
	case LegConnected:
		return PhaseConnected
	case LegDisconnected:
		switch {
		case l.Wrapup != nil && l.ACW != ACWPending:
			return PhaseDone
		case l.Wrapup == nil && l.ACW == ACWSkipped:
			return PhaseDone // the agent skipped after-call work: no wrap-up comes
		}
		return PhaseDisconnected
	}
	return PhaseNone
}

// Transferred reports whether the agent left this leg by transferring it,
// whichever the kind (TransferKind).
func (l *AgentLeg) Transferred() bool {
	if l.State != LegDisconnected {
		return false
	}
	_, ok := TransferKind(l.DisconnectType)
	return ok
}

// Transfer is a move of the conversation to another queue or agent.
type Transfer struct {
	At       time.Time `json:"at,omitzero"`
	FromUser Ref       `json:"fromUser,omitzero"`
	ToQueue  Ref       `json:"toQueue,omitzero"`
	ToUser   Ref       `json:"toUser,omitzero"`
	// Kind is how: TransferBlind, TransferConsult, TransferConference or
	// TransferForward ("" from a source that does not tell).
	Kind string `json:"kind,omitempty"`
}

// Links are URLs about a conversation.
type Links struct {
	RecordingURL   string `json:"recordingUrl,omitempty"`
	InteractionURL string `json:"interactionUrl,omitempty"`
}

// Content is the end-of-conversation material, filled by enrichment.
type Content struct {
	EmailSubject string `json:"emailSubject,omitempty"`
	EmailBody    string `json:"emailBody,omitempty"` // HTML when the email had it
	EmailText    string `json:"emailText,omitempty"` // plain text
	ReplySubject string `json:"replySubject,omitempty"`
	ReplyBody    string `json:"replyBody,omitempty"`
	ReplyText    string `json:"replyText,omitempty"`
	// Transcript is the chat / message transcript or the voice transcript.
	Transcript string `json:"transcript,omitempty"`
	// Summary is an AI summary of the conversation; SummarySource names the
	// engine that wrote it ("genesys", or a custom summarizer's name).
	Summary       string `json:"summary,omitempty"`
	SummarySource string `json:"summarySource,omitempty"`
}

// Conversation is a snapshot of a Genesys Cloud conversation as the source
// saw it at ObservedAt. Genesys re-sends the whole conversation on every
// change; Merge folds snapshots together.
//
// A *Conversation handed to a collaborator is read-only and must not be
// retained past the call unless cloned.
type Conversation struct {
	ID        string     `json:"id"`
	Media     Media      `json:"media"`
	Channel   Channel    `json:"channel,omitempty"`
	Direction Direction  `json:"direction,omitempty"`
	Queue     Ref        `json:"queue,omitzero"`    // the current (latest) ACD queue
	Campaign  Ref        `json:"campaign,omitzero"` // outbound campaign
	Customer  Customer   `json:"customer,omitzero"`
	Agents    []AgentLeg `json:"agents,omitempty"`
	// Attributes are the participant attributes (IVR / flow data).
	Attributes map[string]string `json:"attributes,omitempty"`

	StartTime     time.Time `json:"startTime,omitzero"`
	ConnectedTime time.Time `json:"connectedTime,omitzero"` // customer connected to an agent
	EndTime       time.Time `json:"endTime,omitzero"`       // customer disconnected

	Transfers []Transfer `json:"transfers,omitempty"`
	Links     Links      `json:"links,omitzero"`
	Content   Content    `json:"content,omitzero"`

	// ObservedAt is when the source received this snapshot; pop latency is
	// measured from it.
	ObservedAt time.Time `json:"observedAt,omitzero"`
}

// Kind is the rule media key of the conversation: the channel for
// messaging ("sms", "whatsapp", ...), the media otherwise.
func (c *Conversation) Kind() string {
	if c.Media == MediaMessage && c.Channel != "" {
		return string(c.Channel)
	}
	return string(c.Media)
}

// Ended reports whether the customer has left the conversation.
func (c *Conversation) Ended() bool { return !c.EndTime.IsZero() }

// Leg returns the agent leg with the given id, or nil.
func (c *Conversation) Leg(id string) *AgentLeg {
	for i := range c.Agents {
		if c.Agents[i].ID == id {
			return &c.Agents[i]
		}
	}
	return nil
}

// Duration is the customer's connected → end time (zero when the customer
// never connected). While the conversation is live it runs to now.
func (c *Conversation) Duration(now time.Time) time.Duration {
	start := c.ConnectedTime
	if start.IsZero() {
		return 0
	}
	end := c.EndTime
	if end.IsZero() {
		end = now
	}
	if end.Before(start) {
		return 0
	}
	return end.Sub(start)
}

// Clone returns a deep copy.
func (c *Conversation) Clone() *Conversation {
	if c == nil {
		return nil
	}
	n := *c
	n.Agents = slices.Clone(c.Agents)
	for i := range n.Agents {
		if w := n.Agents[i].Wrapup; w != nil {
			wc := *w
			wc.Tags = slices.Clone(w.Tags)
			n.Agents[i].Wrapup = &wc
		}
	}
	n.Attributes = maps.Clone(c.Attributes)
	n.Transfers = slices.Clone(c.Transfers)
	return &n
}

// progress orders snapshots of one conversation when they arrive out of
// order: a later snapshot has at least as much progress.
func (c *Conversation) progress() int {
	p := 0
	for i := range c.Agents {
		p += 4 * int(c.Agents[i].Phase())
		p++ // each participant counts: they only ever get added
	}
	if c.Ended() {
		p++
	}
	return p
}

// Merge folds another snapshot o of the same conversation into c, whatever
// order they arrived in: each agent leg only moves forward in Phase, values
// from the snapshot with more progress win, and a value known in either is
// never lost. Merge takes ownership of nothing: o is not retained.
func (c *Conversation) Merge(o *Conversation) {
	if o == nil || o == c {
		return
	}
	newer := o.progress() >= c.progress()
	// Equal values are left alone (here and below): the kept snapshot's
	// strings stay where they are (see pack).
	pick := func(dst *string, v string) {
		if v != "" && v != *dst && (newer || *dst == "") {
			*dst = v
		}
	}
	pickTime := func(dst *time.Time, v time.Time) {
		if !v.IsZero() && (newer || dst.IsZero()) {
			*dst = v
		}
	}
	if c.ID == "" {
		c.ID = o.ID
	}
	if o.Media != "" && o.Media != c.Media && (newer || c.Media == "") {
		c.Media = o.Media
	}
	if o.Channel != "" && o.Channel != c.Channel && (newer || c.Channel == "") {
		c.Channel = o.Channel
	}
	if o.Direction != "" && o.Direction != c.Direction && (newer || c.Direction == "") {
		c.Direction = o.Direction
	}
	mergeRef(&c.Queue, o.Queue, newer)
	mergeRef(&c.Campaign, o.Campaign, newer)
	pick(&c.Customer.Address, o.Customer.Address)
	pick(&c.Customer.Phone, o.Customer.Phone)
	pick(&c.Customer.Email, o.Customer.Email)
	pick(&c.Customer.Handle, o.Customer.Handle)
	pick(&c.Customer.Name, o.Customer.Name)
	pickTime(&c.StartTime, o.StartTime)
	pickTime(&c.ConnectedTime, o.ConnectedTime)
	pickTime(&c.EndTime, o.EndTime)
	pickTime(&c.ObservedAt, o.ObservedAt)
	if c.ObservedAt.Before(o.ObservedAt) {
		c.ObservedAt = o.ObservedAt
	}

	for i := range o.Agents {
		ol := &o.Agents[i]
		if cl := c.Leg(ol.ID); cl != nil {
			mergeLeg(cl, ol)
		} else {
			c.Agents = append(c.Agents, *ol)
			if w := ol.Wrapup; w != nil {
				wc := *w
				wc.Tags = slices.Clone(w.Tags)
				c.Agents[len(c.Agents)-1].Wrapup = &wc
			}
		}
	}

	if len(o.Attributes) > 0 {
		if c.Attributes == nil {
			c.Attributes = make(map[string]string, len(o.Attributes))
		}
		for k, v := range o.Attributes {
			if cur, ok := c.Attributes[k]; !ok || (newer && cur != v) {
				c.Attributes[k] = v
			}
		}
	}
	for _, t := range o.Transfers {
		i := slices.IndexFunc(c.Transfers, func(x Transfer) bool { return sameTransfer(x, t) })
		if i < 0 {
			c.Transfers = append(c.Transfers, t)
			continue
		}
		// The same transfer (who, when): a newer snapshot may know better
		// where it went (a source derives it from the participants it
		// sees); the same destination keeps the names it has.
		x := &c.Transfers[i]
		switch {
		case x.ToQueue.ID == t.ToQueue.ID && x.ToUser.ID == t.ToUser.ID:
			mergeRef(&x.ToQueue, t.ToQueue, newer)
			mergeRef(&x.ToUser, t.ToUser, newer)
		case newer:
			x.ToQueue, x.ToUser = t.ToQueue, t.ToUser
		}
		mergeRef(&x.FromUser, t.FromUser, newer)
		pick(&x.Kind, t.Kind)
	}
	slices.SortStableFunc(c.Transfers, func(a, b Transfer) int { return a.At.Compare(b.At) })

	pick(&c.Links.RecordingURL, o.Links.RecordingURL)
	pick(&c.Links.InteractionURL, o.Links.InteractionURL)
	oc, cc := &o.Content, &c.Content
	pick(&cc.EmailSubject, oc.EmailSubject)
	pick(&cc.EmailBody, oc.EmailBody)
	pick(&cc.EmailText, oc.EmailText)
	pick(&cc.ReplySubject, oc.ReplySubject)
	pick(&cc.ReplyBody, oc.ReplyBody)
	pick(&cc.ReplyText, oc.ReplyText)
	pick(&cc.Transcript, oc.Transcript)
	pick(&cc.Summary, oc.Summary)
	pick(&cc.SummarySource, oc.SummarySource)
}

// sameTransfer reports whether a and b are one transfer: the same agent
// leaving at the same time.
func sameTransfer(a, b Transfer) bool {
	return a.At.Equal(b.At) && a.FromUser.ID == b.FromUser.ID
}

func mergeRef(dst *Ref, v Ref, newer bool) {
	if v.ID != "" && v.ID != dst.ID && (newer || dst.ID == "") {
		dst.Name = "" // a different object: its name no longer applies
		dst.ID = v.ID
	}
	if v.Name != "" && v.Name != dst.Name && (v.ID == "" || v.ID == dst.ID) && (newer || dst.Name == "") {
		dst.Name = v.Name
	}
}

// mergeLeg folds o into l; the leg further along wins, gaps are filled from
// the other.
func mergeLeg(l, o *AgentLeg) {
	newer := o.Phase() >= l.Phase()
	// Keep the wrap-up once seen: a stale snapshot never takes it away.
	wrap := l.Wrapup
	if o.Wrapup != nil && (newer || wrap == nil) && (wrap == nil || !sameWrapup(wrap, o.Wrapup)) {
		wc := *o.Wrapup
		wc.Tags = slices.Clone(o.Wrapup.Tags)
		wrap = &wc
	}
	if newer {
		old := *l
		*l = *o
		keepSame(l, &old)
		fillLeg(l, &old)
	} else {
		fillLeg(l, o)
	}
	l.Wrapup = wrap
	// After-call work only moves pending → complete.
	if l.ACW == ACWPending && o.ACW != "" && o.ACW != ACWPending && l.Wrapup != nil {
		l.ACW = o.ACW
	}
}

func fillLeg(l, from *AgentLeg) {
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fillT := func(dst *time.Time, v time.Time) {
		if dst.IsZero() {
			*dst = v
		}
	}
	fill(&l.UserID, from.UserID)
	fill(&l.Name, from.Name)
	fill(&l.Email, from.Email)
	fill(&l.Queue.ID, from.Queue.ID)
	fill(&l.Queue.Name, from.Queue.Name)
	fill(&l.DisconnectType, from.DisconnectType)
	fillT(&l.AlertTime, from.AlertTime)
	fillT(&l.ConnectedTime, from.ConnectedTime)
	fillT(&l.EndTime, from.EndTime)
	if l.ACW == "" {
		l.ACW = from.ACW
	}
}

func sameWrapup(a, b *Wrapup) bool {
	return a.Code == b.Code && a.Name == b.Name && a.Category == b.Category && a.Notes == b.Notes &&
		slices.Equal(a.Tags, b.Tags) && a.Duration == b.Duration && a.EndTime.Equal(b.EndTime) &&
		a.EndTime.Location() == b.EndTime.Location()
}

// keepSame puts back old's strings where l has equal ones (see pack).
func keepSame(l, old *AgentLeg) {
	keep := func(dst *string, v string) {
		if *dst == v {
			*dst = v
		}
	}
	keep(&l.ID, old.ID)
	keep(&l.UserID, old.UserID)
	keep(&l.Name, old.Name)
	keep(&l.Email, old.Email)
	keep(&l.Queue.ID, old.Queue.ID)
	keep(&l.Queue.Name, old.Queue.Name)
	keep(&l.DisconnectType, old.DisconnectType)
}
