package genesys

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// ErrUnknownMedia is returned (wrapped) for a conversation with none of the
// media ctikit handles (calls, callbacks, chats, emails, messages, social
// expressions), e.g. a cobrowse or video-only session.
var ErrUnknownMedia = errors.New("genesys: conversation has no supported media")

// Decoder turns Genesys Cloud conversation JSON (a notification frame's
// eventBody, or the GET /api/v2/conversations/{id} resource) into
// cti.Conversation snapshots. It decodes only the fields ctikit uses.
//
// The zero Decoder is ready to use, with DefaultPhone. A Decoder is
// read-only after construction and safe for concurrent use.
type Decoder struct {
	// Phone normalizes a phone address (an ANI, a tel: or sip: URI, an SMS
	// or WhatsApp number) into Customer.Phone. Nil means DefaultPhone.
	// Returning "" means "not a phone number".
	Phone func(string) string
}

// DefaultPhone strips a tel:/sip: scheme, URI parameters and the host part
// of a sip: URI, and formatting (spaces, dots, dashes, parentheses), keeping
// a leading +. It returns "" for something that is not a phone number
// (letters, too few digits). It does not add a country code: plug a real
// normalizer (libphonenumber) into Decoder.Phone for E.164.
func DefaultPhone(s string) string {
	s = strings.TrimSpace(s)
	switch l := strings.ToLower(s); {
	case strings.HasPrefix(l, "tel:"):
		s = s[4:]
	case strings.HasPrefix(l, "sip:"):
		s = s[4:]
	case strings.HasPrefix(l, "sips:"):
		s = s[5:]
	}
	if i := strings.IndexAny(s, "@;?"); i >= 0 {
		s = s[:i]
	}
	var b strings.Builder
	b.Grow(len(s))
	digits := 0
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
			digits++
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/' || r == '\u00a0':
		default:
			return "" // letters: a SIP user name, not a number
		}
	}
	if digits < 3 {
		return ""
	}
	return b.String()
}

func (d *Decoder) phone(s string) string {
	if s == "" {
		return ""
	}
	if d != nil && d.Phone != nil {
		return d.Phone(s)
	}
	return DefaultPhone(s)
}

// Conversation decodes one conversation (event body or REST resource),
// observed at the given time.
func (d *Decoder) Conversation(body []byte, observedAt time.Time) (*cti.Conversation, error) {
	var w wireConversation
	if err := decodeConversation(body, &w); err != nil {
		return nil, fmt.Errorf("genesys: decode conversation: %w", err)
	}
	return d.convert(&w, observedAt)
}

// Frame decodes a notification frame ({"topicName", "eventBody", ...}).
// For a conversation topic it returns the topic and the snapshot; for any
// other frame (heartbeats, system messages, other topics) the topic and a
// nil conversation. A frame that is not a notification, or a conversation
// that cannot be decoded, is an error.
func (d *Decoder) Frame(frame []byte, observedAt time.Time) (topic string, c *cti.Conversation, err error) {
	t, body, exact, err := splitFrame(frame)
	if err != nil {
		return "", nil, err
	}
	if classify(t) != kindConversation {
		return string(t), nil, nil
	}
	if body, err = eventBody(frame, body, exact); err != nil {
		return string(t), nil, err
	}
	c, err = d.frameConversation(frame, body, observedAt)
	return string(t), c, err
}

// media kinds of a participant's communications, in precedence order.
const (
	mCall = iota
	mChat
	mEmail
	mSocial
	mMessage
	mCallback
	mCount
)

func (p *wireParticipant) comms(m int) []wireComm {
	switch m {
	case mCall:
		return p.Calls
	case mChat:
		return p.Chats
	case mEmail:
		return p.Emails
	case mSocial:
		return p.SocialExpressions
	case mMessage:
		return p.Messages
	case mCallback:
		return p.Callbacks
	}
	return nil
}

func (p *wireParticipant) allComms(f func(m int, c *wireComm)) {
	for m := range mCount {
		cs := p.comms(m)
		for i := range cs {
			f(m, &cs[i])
		}
	}
}

// primary is the participant's communication of the conversation's media,
// or its first one.
func (p *wireParticipant) primary(m int) (*wireComm, int) {
	if cs := p.comms(m); len(cs) > 0 {
		return &cs[len(cs)-1], m
	}
	for k := mCount - 1; k >= 0; k-- {
		if cs := p.comms(k); len(cs) > 0 {
			return &cs[len(cs)-1], k
		}
	}
	return nil, -1
}

func legState(s string) cti.LegState {
	switch strings.ToLower(s) {
	case "alerting", "offering", "dialing", "contacting":
		return cti.LegAlerting
	case "connected":
		return cti.LegConnected
	case "disconnected", "terminated":
		return cti.LegDisconnected
	}
	return ""
}

func acwState(s string) cti.ACWState {
	switch v := cti.ACWState(s); v {
	case cti.ACWPending, cti.ACWComplete, cti.ACWSkipped, cti.ACWNotApplicable:
		return v
	}
	return cti.ACWUnknown
}

func isAgent(p *wireParticipant) bool {
	if p.MonitoredParticipantID != "" || p.CoachedParticipantID != "" {
		return false // a supervisor listening in on or coaching a leg
	}
	switch strings.ToLower(p.Purpose) {
	case "agent":
		return true
	case "user":
		return p.UserID != ""
	}
	return false
}

func isCustomer(p *wireParticipant) bool {
	switch strings.ToLower(p.Purpose) {
	case "customer", "external":
		return true
	}
	return false
}

func (d *Decoder) convert(w *wireConversation, at time.Time) (*cti.Conversation, error) {
	if w.ID == "" {
		return nil, errors.New("genesys: conversation without id")
	}
	// The conversation's media: the highest-precedence kind any participant has.
	media := -1
	for i := range w.Participants {
		for m := mCount - 1; m > media; m-- {
			if len(w.Participants[i].comms(m)) > 0 {
				media = m
				break
			}
		}
	}
	if media < 0 {
		return nil, fmt.Errorf("conversation %s: %w", w.ID, ErrUnknownMedia)
	}
	c := &cti.Conversation{ID: w.ID, ObservedAt: at}
	switch media {
	case mCall:
		c.Media = cti.MediaVoice
	case mCallback:
		c.Media = cti.MediaCallback
	case mChat:
		c.Media = cti.MediaChat
	case mEmail:
		c.Media = cti.MediaEmail
	case mMessage:
		c.Media = cti.MediaMessage
	case mSocial:
		c.Media = cti.MediaMessage
	}

	var cust *wireParticipant
	for i := range w.Participants {
		if p := &w.Participants[i]; isCustomer(p) && len(p.comms(media)) > 0 {
			cust = p
			break
		}
	}
	if cust == nil {
		for i := range w.Participants {
			if isCustomer(&w.Participants[i]) {
				cust = &w.Participants[i]
				break
			}
		}
	}

	// Channel and direction.
	for i := range w.Participants {
		p := &w.Participants[i]
		p.allComms(func(m int, cm *wireComm) {
			if c.Channel == "" && m == media {
				switch m {
				case mMessage:
					t := cm.Type
					if t == "" {
						t = cm.MessageType
					}
					c.Channel = cti.Channel(strings.ToLower(t))
				case mSocial:
					c.Channel = cti.Channel(strings.ToLower(cm.SocialMediaHub))
				}
			}
		})
	}
	if cust != nil {
		if cm, _ := cust.primary(media); cm != nil {
			c.Direction = direction(cm.Direction)
		}
	}

	// Attributes: everyone's, the customer's winning.
	for i := range w.Participants {
		p := &w.Participants[i]
		if p == cust || len(p.Attributes) == 0 {
			continue
		}
		if c.Attributes == nil {
			c.Attributes = make(map[string]string, len(p.Attributes))
		}
		for k, v := range p.Attributes {
			c.Attributes[k] = v
		}
	}
	if cust != nil && len(cust.Attributes) > 0 {
		if c.Attributes == nil {
			c.Attributes = make(map[string]string, len(cust.Attributes))
		}
		for k, v := range cust.Attributes {
			c.Attributes[k] = v
		}
	}

	// Agent legs, queue, campaign, times, transfers.
	start := w.StartTime.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (start.IsZero() || t.Before(start)) {
			start = t
		}
	}
	for i := range w.Participants {
		p := &w.Participants[i]
		if w.StartTime.IsZero() {
			earliest(p.StartTime.Time)
			earliest(p.ConnectedTime.Time)
			p.allComms(func(_ int, cm *wireComm) { earliest(cm.ConnectedTime.Time) })
		}
		switch {
		case strings.EqualFold(p.Purpose, "acd"):
			if p.QueueID != "" {
				name := p.QueueName
				if name == "" {
					name = p.Name
				}
				c.Queue = cti.Ref{ID: p.QueueID, Name: name}
			}
		case isAgent(p):
			if leg, ok := d.leg(p, media); ok {
				c.Agents = append(c.Agents, leg)
			}
		}
		p.allComms(func(_ int, cm *wireComm) {
			if cm.DialerPreview != nil && cm.DialerPreview.CampaignID != "" && c.Campaign.ID == "" {
				c.Campaign.ID = cm.DialerPreview.CampaignID
			}
		})
	}
	c.StartTime = start
	if c.Queue.IsZero() {
		for i := len(c.Agents) - 1; i >= 0; i-- {
			if !c.Agents[i].Queue.IsZero() {
				c.Queue = c.Agents[i].Queue
				break
			}
		}
	}
	if id := c.Attributes["dialerCampaignId"]; id != "" {
		c.Campaign.ID = id
	}
	if c.Direction == "" {
		for i := range w.Participants {
			if p := &w.Participants[i]; isAgent(p) {
				if cm, _ := p.primary(media); cm != nil && direction(cm.Direction) != "" {
					c.Direction = direction(cm.Direction)
					break
				}
			}
		}
	}
	if c.Direction == "" {
		switch {
		case c.Campaign.ID != "":
			c.Direction = cti.Outbound
		case media == mChat || media == mSocial:
			// Chats and social expressions carry no direction: the
			// customer started them.
			c.Direction = cti.Inbound
		}
	}
	for i := range c.Agents {
		if t := c.Agents[i].ConnectedTime; !t.IsZero() && (c.ConnectedTime.IsZero() || t.Before(c.ConnectedTime)) {
			c.ConnectedTime = t
		}
	}
	c.EndTime = endTime(w, cust)
	c.Transfers = transfers(w)
	if cust != nil {
		c.Customer = d.customer(c, cust, media)
	}
	return c, nil
}

func direction(s string) cti.Direction {
	switch strings.ToLower(s) {
	case "inbound":
		return cti.Inbound
	case "outbound":
		return cti.Outbound
	}
	return ""
}

// leg builds the agent leg of an agent participant.
func (d *Decoder) leg(p *wireParticipant, media int) (cti.AgentLeg, bool) {
	prim, _ := p.primary(media)
	if prim == nil {
		return cti.AgentLeg{}, false
	}
	leg := cti.AgentLeg{ID: p.ID, UserID: p.UserID, Name: p.Name}
	if p.QueueID != "" {
		leg.Queue = cti.Ref{ID: p.QueueID, Name: p.QueueName}
	} else if p.RoutingData != nil && p.RoutingData.Queue.ID != "" {
		leg.Queue = cti.Ref{ID: p.RoutingData.Queue.ID}
	}
	// The leg's state over all its communications (a callback leg has the
	// callback and the call the agent places): connected if any is,
	// alerting if any is, disconnected when all are.
	var anyConn, anyAlert, allDisc, some, everConn bool
	allDisc = true
	var wrap *wireWrapup
	var acw cti.ACWState
	p.allComms(func(_ int, cm *wireComm) {
		some = true
		everConn = everConn || !cm.ConnectedTime.IsZero()
		switch legState(cm.State) {
		case cti.LegConnected:
			anyConn = true
			allDisc = false
		case cti.LegAlerting:
			anyAlert = true
			allDisc = false
		case cti.LegDisconnected:
		default:
			allDisc = false
		}
		if cm.AfterCallWorkRequired {
			leg.WrapupExpected = true
		}
		if wrap == nil && cm.Wrapup != nil && cm.Wrapup.Code != "" {
			wrap = cm.Wrapup
		}
		if cm.AfterCallWork != nil {
			if s := acwState(cm.AfterCallWork.State); s != "" && (acw == "" || cm == prim) {
				acw = s
			}
		}
	})
	switch {
	case anyConn:
		leg.State = cti.LegConnected
	case anyAlert:
		leg.State = cti.LegAlerting
	case some && allDisc:
		leg.State = cti.LegDisconnected
	}
	if p.Wrapup != nil && p.Wrapup.Code != "" {
		wrap = p.Wrapup
	}
	if prim.Wrapup != nil && prim.Wrapup.Code != "" {
		wrap = prim.Wrapup
	}
	leg.WrapupExpected = leg.WrapupExpected || p.WrapupRequired || p.WrapupExpected
	if leg.State == cti.LegDisconnected && !everConn && p.ConnectedTime.IsZero() {
		// Genesys sets wrapupExpected while the leg rings ("once the call
		// connects"): a leg that ended without ever connecting (not
		// answered, declined) owes no wrap-up.
		leg.WrapupExpected = false
	}
	leg.ACW = acw
	leg.DisconnectType = prim.DisconnectType
	leg.AlertTime = first(prim.StartAlertingTime.Time, p.StartTime.Time)
	if leg.State != cti.LegAlerting {
		leg.ConnectedTime = first(prim.ConnectedTime.Time, p.ConnectedTime.Time)
	}
	if leg.State == cti.LegDisconnected {
		leg.EndTime = first(prim.DisconnectedTime.Time, p.EndTime.Time)
	}
	if wrap != nil {
		leg.Wrapup = &cti.Wrapup{
			Code: wrap.Code, Name: wrap.Name, Notes: wrap.Notes, EndTime: wrap.EndTime.Time,
			Duration: time.Duration(wrap.DurationSeconds) * time.Second,
		}
		if len(wrap.Tags) > 0 {
			leg.Wrapup.Tags = append([]string(nil), wrap.Tags...)
		}
	}
	return leg, true
}

func first(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// ended reports whether every communication of p is disconnected, and
// when the last one was (zero when no time was given).
func ended(p *wireParticipant) (time.Time, bool) {
	var end time.Time
	done, some := true, false
	p.allComms(func(_ int, cm *wireComm) {
		some = true
		if legState(cm.State) != cti.LegDisconnected {
			done = false
			return
		}
		if cm.DisconnectedTime.After(end) {
			end = cm.DisconnectedTime.Time
		}
	})
	if !some || !done {
		return time.Time{}, false
	}
	if end.IsZero() {
		end = p.EndTime.Time
	}
	return end, true
}

// routedOn reports whether p is a queue participant that handed the
// conversation on (its communication ended by transfer, to the agent who
// answered).
func routedOn(p *wireParticipant) bool {
	if !strings.EqualFold(p.Purpose, "acd") {
		return false
	}
	routed := false
	p.allComms(func(_ int, cm *wireComm) {
		if _, ok := cti.TransferKind(cm.DisconnectType); ok {
			routed = true
		}
	})
	return routed
}

// endTime is when the customer left: all the customer's communications are
// disconnected. Without a customer participant (an internal call), when
// everyone has left.
func endTime(w *wireConversation, cust *wireParticipant) time.Time {
	if !w.EndTime.IsZero() {
		return w.EndTime.Time
	}
	if cust != nil {
		if t, ok := ended(cust); ok {
			return t
		}
		return time.Time{}
	}
	var last time.Time
	for i := range w.Participants {
		t, ok := ended(&w.Participants[i])
		if !ok && len(w.Participants[i].Calls)+len(w.Participants[i].Chats)+len(w.Participants[i].Messages)+len(w.Participants[i].Emails)+len(w.Participants[i].Callbacks)+len(w.Participants[i].SocialExpressions) > 0 {
			return time.Time{}
		}
		if t.After(last) {
			last = t
		}
	}
	return last
}

// transfers derives the transfers from the participants: an agent
// participant that left by transfer (blind, consult, conference or
// forward: cti.TransferKind), and the ACD (queue) or agent participant
// that followed it (for a consult, the consulted one) and was still there
// when it left: one that had already left (a consult that failed before a
// blind transfer) is not where the conversation went — unless it was a
// queue that had routed the call on (a consult through a queue, answered
// before the consulting agent handed over: the queue is the destination,
// as when nobody had answered yet). The result is stable across
// snapshots, so snapshots merge without duplicates.
func transfers(w *wireConversation) []cti.Transfer {
	var out []cti.Transfer
	for i := range w.Participants {
		p := &w.Participants[i]
		if !isAgent(p) {
			continue
		}
		prim, _ := p.primary(mCount - 1)
		var kind string
		var at time.Time
		p.allComms(func(_ int, cm *wireComm) {
			if k, ok := cti.TransferKind(cm.DisconnectType); ok {
				kind, at = k, cm.DisconnectedTime.Time
			}
		})
		if kind == "" || prim == nil {
			continue
		}
		t := cti.Transfer{At: first(at, p.EndTime.Time), FromUser: cti.Ref{ID: p.UserID}, Kind: kind}
		for j := i + 1; j < len(w.Participants); j++ {
			n := &w.Participants[j]
			if end, ok := ended(n); ok && !end.IsZero() && end.Before(t.At) && !routedOn(n) {
				continue // gone before the transfer
			}
			if strings.EqualFold(n.Purpose, "acd") && n.QueueID != "" {
				t.ToQueue = cti.Ref{ID: n.QueueID}
				break
			}
			if isAgent(n) {
				t.ToUser = cti.Ref{ID: n.UserID}
				break
			}
		}
		out = append(out, t)
	}
	return out
}

// customer extracts the external party.
func (d *Decoder) customer(c *cti.Conversation, p *wireParticipant, media int) cti.Customer {
	var cu cti.Customer
	cm, _ := p.primary(media)
	attr := func(k string) string { return strings.TrimSpace(p.Attributes[k]) }
	if cm == nil {
		cm = &wireComm{}
	}
	switch media {
	case mCall:
		cu.Address = firstString(p.Address, cm.Self.value(), dirPick(c.Direction, p.Ani, p.Dnis))
		cu.Name = firstString(p.Name, p.AniName, nameOf(cm.Self))
		cu.Phone = d.phone(cu.Address)
	case mCallback:
		if len(cm.CallbackNumbers) > 0 {
			cu.Address = cm.CallbackNumbers[0]
		}
		cu.Address = firstString(cu.Address, p.Address, p.Ani)
		cu.Name = firstString(cm.CallbackUserName, p.Name)
		cu.Phone = d.phone(cu.Address)
	case mChat:
		cu.Address = p.Address
		cu.Name = firstString(p.Name, strings.TrimSpace(attr("context.firstName")+" "+attr("context.lastName")))
	case mEmail:
		cu.Address = p.Address
		cu.Email, cu.Name = parseEmail(p.Address)
		cu.Name = firstString(cu.Name, p.Name)
	case mMessage:
		a := dirPickAddr(c.Direction, cm.FromAddress, cm.ToAddress)
		cu.Address = firstString(a.value(), p.Address)
		cu.Name = firstString(nameOf(a), p.Name)
		switch c.Channel {
		case cti.ChannelSMS:
			cu.Phone = d.phone(cu.Address)
		case cti.ChannelWhatsApp:
			cu.Phone = d.phone(cti.WhatsAppNumber(cu.Address))
		default:
			cu.Handle = cu.Address
		}
	case mSocial:
		cu.Address = firstString(cm.SocialUserName, p.Address)
		cu.Handle = cu.Address
		cu.Name = p.Name
	}
	if cu.Email == "" {
		if e, _ := parseEmail(attr("context.email")); e != "" {
			cu.Email = e
		}
	}
	if cu.Phone == "" {
		cu.Phone = d.phone(attr("context.phoneNumber"))
	}
	if cu.Name == "" {
		cu.Name = strings.TrimSpace(attr("context.firstName") + " " + attr("context.lastName"))
	}
	return cu
}

func dirPick(dir cti.Direction, in, out string) string {
	if dir == cti.Outbound {
		return out
	}
	return in
}

func dirPickAddr(dir cti.Direction, from, to *wireAddress) *wireAddress {
	if dir == cti.Outbound {
		return to
	}
	return from
}

func nameOf(a *wireAddress) string {
	if a == nil {
		return ""
	}
	return a.Name
}

func firstString(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// parseEmail returns the address and display name of "Name <a@b>" or
// "a@b"; "" when it is not an email address.
func parseEmail(s string) (addr, name string) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "mailto:"))
	if s == "" || !strings.Contains(s, "@") {
		return "", ""
	}
	if a, err := mail.ParseAddress(s); err == nil {
		return strings.ToLower(a.Address), a.Name
	}
	return "", ""
}
