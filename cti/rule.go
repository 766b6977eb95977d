package cti

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Rules is the no-code surface: what to subscribe to, and per queue /
// campaign / media what to identify, pop and sync. The first rule whose
// When matches a conversation wins. Build it in Go or load it from YAML
// with package cti/config; call Validate before use (NewEngine does).
type Rules struct {
	Subscribe Subscribe `json:"subscribe" yaml:"subscribe"`
	Rules     []Rule    `json:"rules" yaml:"rules"`
}

// Subscribe lists the Genesys queues and users whose conversations are
// watched.
type Subscribe struct {
	Queues []string `json:"queues,omitempty" yaml:"queues,omitempty"`
	Users  []string `json:"users,omitempty" yaml:"users,omitempty"`
}

// Popup says what to show the agent.
type Popup string

// Pop-up kinds.
const (
	PopupNone             Popup = "none"
	PopupUser             Popup = "user"
	PopupTicketLatestOpen Popup = "ticket:latest_open"
	PopupTicketNew        Popup = "ticket:new"
)

// PopOn says when to pop.
type PopOn string

// Pop moments.
const (
	PopOnAlerting  PopOn = "alerting"
	PopOnConnected PopOn = "connected"
)

// Multiple says what to do when several records match.
type Multiple string

// Multiple-match policies.
const (
	MultipleChoose Multiple = "choose" // the agent picks; nothing is popped until then
	MultipleFirst  Multiple = "first"  // pop the most recently updated
	MultipleNone   Multiple = "none"   // pop nothing
)

// NoMatch says what to do when nothing matches.
type NoMatch string

// No-match actions.
const (
	NoMatchNothing             NoMatch = "nothing"
	NoMatchCreateUser          NoMatch = "create_user"
	NoMatchCreateTicket        NoMatch = "create_ticket"
	NoMatchCreateUserAndTicket NoMatch = "create_user_and_ticket"
)

// SyncTicket says which ticket the end-of-conversation sync writes to.
type SyncTicket string

// Sync targets.
const (
	SyncPopped     SyncTicket = "popped"      // the popped (or agent-picked) ticket; a popped user gets a new ticket
	SyncLatestOpen SyncTicket = "latest_open" // the customer's most recently updated unsolved ticket
	SyncNew        SyncTicket = "new"         // a new ticket
)

// CommentMode says how the sync comment is written.
type CommentMode string

// Comment modes.
const (
	CommentInternal CommentMode = "internal"
	CommentPublic   CommentMode = "public"
	CommentNone     CommentMode = "none"
)

// Rule is one row of the rules: when it applies and what it does.
type Rule struct {
	Name     string         `json:"name" yaml:"name"`
	When     When           `json:"when" yaml:"when"`
	Identify []IdentifySpec `json:"identify,omitempty" yaml:"identify,omitempty"`
	Popup    Popup          `json:"popup,omitempty" yaml:"popup,omitempty"`
	PopOn    PopOn          `json:"pop_on,omitempty" yaml:"pop_on,omitempty"`
	Multiple Multiple       `json:"multiple,omitempty" yaml:"multiple,omitempty"`
	NoMatch  NoMatch        `json:"nomatch,omitempty" yaml:"nomatch,omitempty"`
	// IdentifyEarly identifies the customer as soon as the conversation
	// is seen with this rule applying and no agent on it yet (in IVR or
	// waiting in queue), instead of when it rings an agent: the pop then
	// only shows (the search round trips are off the pop's path). It costs
	// the searches of conversations abandoned before an agent (match.Cache
	// shares them with repeat callers). The rule is matched on the
	// conversation's queue; the agents of the conversation reuse what it
	// found, as after a transfer, unless a leg rings under a rule that
	// searches differently (other identify entries, or open tickets wanted
	// where they were not), which searches again.
	IdentifyEarly bool `json:"identify_early,omitempty" yaml:"identify_early,omitempty"`
	// Subject is the template for the subject of tickets this rule creates
	// (ticket:new, nomatch create_ticket). Empty means a default per media.
	Subject string   `json:"subject,omitempty" yaml:"subject,omitempty"`
	Sync    SyncSpec `json:"sync" yaml:"sync"`
}

// When selects conversations. Every non-empty list must contain the
// conversation's value; an empty list matches anything.
type When struct {
	// Queues are Genesys queue ids or names (names compare case-insensitively).
	Queues    []string `json:"queues,omitempty" yaml:"queues,omitempty"`
	Campaigns []string `json:"campaigns,omitempty" yaml:"campaigns,omitempty"`
	// Media are values from Kinds, or "message" for every messaging channel.
	Media     []string  `json:"media,omitempty" yaml:"media,omitempty"`
	Direction Direction `json:"direction,omitempty" yaml:"direction,omitempty"`
}

// SyncSpec is what the end-of-conversation sync writes.
type SyncSpec struct {
	Ticket  SyncTicket  `json:"ticket,omitempty" yaml:"ticket,omitempty"`
	Comment CommentMode `json:"comment,omitempty" yaml:"comment,omitempty"`
	// Fields maps Zendesk ticket field ids to templates over the data points
	// (see package syncmap), e.g. {"360000000001": "{{.CallDuration}}"}.
	Fields map[string]string `json:"fields,omitempty" yaml:"fields,omitempty"`
	// Tags are added to the ticket.
	Tags []string `json:"tags,omitempty" yaml:"tags,omitempty"`
	// Template overrides the default comment template.
	Template string `json:"template,omitempty" yaml:"template,omitempty"`
}

// IdentifySpec is one entry of a rule's identify list: "phone", "email",
// "social", or "attribute:NAME=TARGET" where TARGET is external_id, email,
// phone, ticket_id, organization or user_field.KEY.
type IdentifySpec struct {
	Kind      IdentityKind
	Attribute string
	Target    string
}

// ParseIdentify parses one identify entry.
func ParseIdentify(s string) (IdentifySpec, error) {
	switch IdentityKind(s) {
	case IdentifyPhone, IdentifyEmail, IdentifySocial:
		return IdentifySpec{Kind: IdentityKind(s)}, nil
	}
	rest, ok := strings.CutPrefix(s, "attribute:")
	if !ok {
		return IdentifySpec{}, errors.New(`want phone, email, social or attribute:NAME=TARGET`)
	}
	name, target, ok := strings.Cut(rest, "=")
	name, target = strings.TrimSpace(name), strings.TrimSpace(target)
	if !ok || name == "" || target == "" {
		return IdentifySpec{}, errors.New(`want attribute:NAME=TARGET, e.g. attribute:AccountNumber=external_id`)
	}
	switch {
	case target == TargetExternalID, target == TargetEmail, target == TargetPhone,
		target == TargetTicketID, target == TargetOrganization:
	case strings.HasPrefix(target, TargetUserField) && len(target) > len(TargetUserField):
	default:
		return IdentifySpec{}, fmt.Errorf("unknown target %q: want external_id, email, phone, ticket_id, organization or user_field.KEY", target)
	}
	return IdentifySpec{Kind: IdentifyAttribute, Attribute: name, Target: target}, nil
}

func (s IdentifySpec) String() string {
	if s.Kind == IdentifyAttribute {
		return "attribute:" + s.Attribute + "=" + s.Target
	}
	return string(s.Kind)
}

// MarshalText implements encoding.TextMarshaler.
func (s IdentifySpec) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *IdentifySpec) UnmarshalText(b []byte) error {
	v, err := ParseIdentify(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Identities resolves the rule's identify list against a conversation, in
// order, skipping entries the conversation has no value for.
func (r *Rule) Identities(c *Conversation) []Identity {
	out := make([]Identity, 0, len(r.Identify))
	for _, s := range r.Identify {
		id := Identity{Kind: s.Kind}
		switch s.Kind {
		case IdentifyPhone:
			id.Value = c.Customer.Phone
		case IdentifyEmail:
			id.Value = c.Customer.Email
		case IdentifySocial:
			id.Value, id.Channel = c.Customer.Handle, c.Channel
		case IdentifyAttribute:
			id.Value, id.Attribute, id.Target = strings.TrimSpace(c.Attributes[s.Attribute]), s.Attribute, s.Target
		}
		if id.Value != "" {
			out = append(out, id)
		}
	}
	return out
}

// WantsOpenTickets reports whether identifying for this rule needs each
// user's open tickets.
func (r *Rule) WantsOpenTickets() bool {
	return r.Popup == PopupTicketLatestOpen || r.Sync.Ticket == SyncLatestOpen
}

// Matches reports whether the rule applies to conversation c for agent leg
// l (l may be nil). The leg's queue, when known, is the queue compared.
func (r *Rule) Matches(c *Conversation, l *AgentLeg) bool {
	w := &r.When
	if w.Direction != "" && c.Direction != w.Direction {
		return false
	}
	if len(w.Media) > 0 && !slices.Contains(w.Media, c.Kind()) &&
		!(c.Media == MediaMessage && slices.Contains(w.Media, string(MediaMessage))) {
		return false
	}
	if len(w.Queues) > 0 {
		q := c.Queue
		if l != nil && l.Queue.ID != "" {
			q = l.Queue
		}
		if !matchRef(w.Queues, q) {
			return false
		}
	}
	if len(w.Campaigns) > 0 && !matchRef(w.Campaigns, c.Campaign) {
		return false
	}
	return true
}

func matchRef(list []string, r Ref) bool {
	for _, v := range list {
		if (r.ID != "" && v == r.ID) || (r.Name != "" && strings.EqualFold(v, r.Name)) {
			return true
		}
	}
	return false
}

// Match returns the first rule that applies, or nil.
func (rs *Rules) Match(c *Conversation, l *AgentLeg) *Rule {
	for i := range rs.Rules {
		if rs.Rules[i].Matches(c, l) {
			return &rs.Rules[i]
		}
	}
	return nil
}

// Rule returns the rule with the given name, or nil.
func (rs *Rules) Rule(name string) *Rule {
	for i := range rs.Rules {
		if rs.Rules[i].Name == name {
			return &rs.Rules[i]
		}
	}
	return nil
}

// ApplyDefaults fills unset rule options with their defaults: popup user,
// pop_on alerting, multiple choose, nomatch nothing, sync.ticket popped,
// sync.comment internal.
func (rs *Rules) ApplyDefaults() {
	for i := range rs.Rules {
		r := &rs.Rules[i]
		def := func(p *string, v string) {
			if *p == "" {
				*p = v
			}
		}
		def((*string)(&r.Popup), string(PopupUser))
		def((*string)(&r.PopOn), string(PopOnAlerting))
		def((*string)(&r.Multiple), string(MultipleChoose))
		def((*string)(&r.NoMatch), string(NoMatchNothing))
		def((*string)(&r.Sync.Ticket), string(SyncPopped))
		def((*string)(&r.Sync.Comment), string(CommentInternal))
	}
}

// Validate checks the rules and returns every mistake found, each a
// *ConfigError naming the key path, the value and the fix, joined with
// errors.Join. Unset options are accepted (ApplyDefaults fills them).
func (rs *Rules) Validate() error {
	var errs []error
	bad := func(path, value, reason string, args ...any) {
		errs = append(errs, &ConfigError{Path: path, Value: value, Reason: fmt.Sprintf(reason, args...)})
	}
	for i, q := range rs.Subscribe.Queues {
		if strings.TrimSpace(q) == "" {
			bad(fmt.Sprintf("subscribe.queues[%d]", i), "", "empty queue id")
		}
	}
	for i, u := range rs.Subscribe.Users {
		if strings.TrimSpace(u) == "" {
			bad(fmt.Sprintf("subscribe.users[%d]", i), "", "empty user id")
		}
	}
	if len(rs.Subscribe.Queues) == 0 && len(rs.Subscribe.Users) == 0 {
		bad("subscribe", "", "subscribe to at least one queue (subscribe.queues) or user (subscribe.users): nothing would be watched")
	}
	if len(rs.Rules) == 0 {
		bad("rules", "", "add at least one rule: with none, no conversation is popped or synced")
	}
	names := map[string]int{}
	for i := range rs.Rules {
		r := &rs.Rules[i]
		p := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			bad(p+".name", "", "every rule needs a name (used in logs and metrics)")
		} else if j, dup := names[r.Name]; dup {
			bad(p+".name", r.Name, "same name as rules[%d]: names must be unique", j)
		} else {
			names[r.Name] = i
		}
		for k, m := range r.When.Media {
			if !slices.Contains(Kinds, m) && m != string(MediaMessage) {
				bad(fmt.Sprintf("%s.when.media[%d]", p, k), m, "unknown media: want one of %s, or message", strings.Join(Kinds, ", "))
			}
		}
		switch r.When.Direction {
		case "", Inbound, Outbound:
		default:
			bad(p+".when.direction", string(r.When.Direction), "want inbound, outbound, or leave it empty for any")
		}
		for k, q := range r.When.Queues {
			if strings.TrimSpace(q) == "" {
				bad(fmt.Sprintf("%s.when.queues[%d]", p, k), "", "empty queue: remove it or give a queue id or name")
			}
		}
		if r.When.Direction == Inbound && len(r.When.Campaigns) > 0 {
			bad(p+".when", "", "this rule can never match: campaign conversations are outbound but direction is inbound; drop one of them")
		}
		if len(rs.Subscribe.Users) == 0 && len(rs.Subscribe.Queues) > 0 {
			for k, q := range r.When.Queues {
				if looksLikeID(q) && !slices.Contains(rs.Subscribe.Queues, q) {
					bad(fmt.Sprintf("%s.when.queues[%d]", p, k), q, "this rule can never match: the queue is not in subscribe.queues and no users are subscribed; add it to subscribe.queues")
				}
			}
		}
		for j := range i {
			if covers(&rs.Rules[j].When, &r.When) {
				bad(p, r.Name, "this rule can never match: rules[%d] (%s) comes first and matches everything it does; move it above or narrow rules[%d].when", j, rs.Rules[j].Name, j)
				break
			}
		}
		for k, s := range r.Identify {
			if s.Kind == IdentifyAttribute && (s.Attribute == "" || s.Target == "") {
				bad(fmt.Sprintf("%s.identify[%d]", p, k), s.String(), "want attribute:NAME=TARGET")
			}
		}
		switch r.Popup {
		case "", PopupNone, PopupUser, PopupTicketLatestOpen, PopupTicketNew:
		default:
			bad(p+".popup", string(r.Popup), "unknown popup: want none, user, ticket:latest_open or ticket:new")
		}
		if (r.Popup == "" || r.Popup == PopupUser || r.Popup == PopupTicketLatestOpen) && len(r.Identify) == 0 {
			bad(p+".identify", "", "popup %s needs at least one identify entry (phone, email, social, attribute:NAME=TARGET)", orDefault(string(r.Popup), string(PopupUser)))
		}
		switch r.PopOn {
		case "", PopOnAlerting, PopOnConnected:
		default:
			bad(p+".pop_on", string(r.PopOn), "want alerting or connected")
		}
		switch r.Multiple {
		case "", MultipleChoose, MultipleFirst, MultipleNone:
		default:
			bad(p+".multiple", string(r.Multiple), "want choose, first or none")
		}
		switch r.NoMatch {
		case "", NoMatchNothing, NoMatchCreateUser, NoMatchCreateTicket, NoMatchCreateUserAndTicket:
		default:
			bad(p+".nomatch", string(r.NoMatch), "want nothing, create_user, create_ticket or create_user_and_ticket")
		}
		switch r.Sync.Ticket {
		case "", SyncPopped, SyncLatestOpen, SyncNew:
		default:
			bad(p+".sync.ticket", string(r.Sync.Ticket), "want popped, latest_open or new")
		}
		switch r.Sync.Comment {
		case "", CommentInternal, CommentPublic, CommentNone:
		default:
			bad(p+".sync.comment", string(r.Sync.Comment), "want internal, public or none")
		}
		for id := range r.Sync.Fields {
			if !isDigits(id) {
				bad(p+".sync.fields", id, "a Zendesk ticket field id is a number (Admin Center > Objects and rules > Tickets > Fields)")
			}
		}
	}
	return errors.Join(errs...)
}

// covers reports whether every conversation a matches b also matches.
func covers(a, b *When) bool {
	sub := func(x, y []string) bool { // x empty (any) or y ⊆ x, y non-empty
		if len(x) == 0 {
			return true
		}
		if len(y) == 0 {
			return false
		}
		for _, v := range y {
			if !slices.ContainsFunc(x, func(u string) bool { return strings.EqualFold(u, v) }) {
				return false
			}
		}
		return true
	}
	media := func(x, y []string) bool {
		if slices.Contains(x, string(MediaMessage)) {
			// "message" covers every messaging channel
			x = append(slices.Clone(x), Kinds[4:]...)
		}
		return sub(x, y)
	}
	return (a.Direction == "" || a.Direction == b.Direction) &&
		sub(a.Queues, b.Queues) && sub(a.Campaigns, b.Campaigns) && media(a.Media, b.Media)
}

func looksLikeID(s string) bool {
	// Genesys ids are UUIDs: 36 characters, 4 dashes.
	return len(s) == 36 && strings.Count(s, "-") == 4
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
