package genesystest

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"
)

// Spec describes a conversation to Start.
type Spec struct {
	// ID is the conversation id (default: a new UUID).
	ID    string
	Media Media
	// MessageType is the messaging platform for MediaMessage (sms — the
	// default —, whatsapp, facebook, twitter, line, instagram, webmessaging,
	// open) or the social media hub for MediaSocial (facebook — the default
	// —, twitter, instagram).
	MessageType string
	// Direction is "inbound" (default) or "outbound".
	Direction string
	// From is the customer's address: an E.164 phone for voice, callback,
	// SMS and WhatsApp, an email address for email, a platform id or
	// handle for the other channels.
	From string
	// Name is the customer's display name.
	Name string
	// Queue is the id of the queue the conversation waits in.
	Queue string
	// Campaign is the outbound campaign id (voice, callback); it makes the
	// conversation outbound.
	Campaign string
	// Attributes are participant data set by the flow (IVR inputs).
	Attributes map[string]string
	// Subject and Body are the email's subject and text, or the first
	// customer message of a chat, messaging or social conversation.
	Subject, Body string
	// OrgAddress is the org's number or address (default +18005550199, or
	// support@example.com for email).
	OrgAddress string
	// NoWrapup makes agent legs not require a wrap-up.
	NoWrapup bool
	// NoRecording gives a call no recording.
	NoRecording bool
}

// Conversation is a scripted conversation on a Server. Each step (Alert,
// Connect, Transfer, Disconnect, End, Wrapup, ...) changes it the way
// Genesys would and publishes the new state to every subscribed topic
// (the queues' and the agents' conversation topics). Steps on one
// conversation are meant to be called in order from one goroutine; a
// Server runs any number of conversations concurrently.
type Conversation struct {
	// ID is the conversation id.
	ID string
	s  *Server
	c  *conversation
}

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func telURI(s string) string {
	if s == "" || strings.HasPrefix(s, "tel:") || strings.HasPrefix(s, "sip:") {
		return s
	}
	return "tel:" + s
}

// Start begins a conversation: the customer participant (connected to the
// org) and, when Spec.Queue is set, the ACD participant holding it in the
// queue. It publishes the first state.
func (s *Server) Start(sp Spec) *Conversation {
	if sp.ID == "" {
		sp.ID = newID()
	}
	if sp.Media == "" {
		sp.Media = MediaVoice
	}
	dir := strings.ToLower(sp.Direction)
	if dir == "" {
		dir = "inbound"
		if sp.Campaign != "" {
			dir = "outbound"
		}
	}
	t := now()
	c := &conversation{id: sp.ID, media: sp.Media, direction: dir, start: t, campaign: sp.Campaign, noWrapup: sp.NoWrapup}
	org := sp.OrgAddress
	if org == "" {
		org = "+18005550199"
		if sp.Media == MediaEmail {
			org = "support@example.com"
		}
	}
	c.orgAddr, c.customerAddr = org, sp.From
	cust := &participant{id: newID(), purpose: "customer", name: sp.Name, start: t, connected: t, attributes: maps.Clone(sp.Attributes)}
	if cust.attributes == nil {
		cust.attributes = map[string]string{}
	}
	if sp.Campaign != "" {
		cust.attributes["dialerCampaignId"] = sp.Campaign
		cust.attributes["dialerContactId"] = "contact-" + sp.ID
		cust.attributes["dialerContactListId"] = "list-1"
	}
	cm := &comm{kind: sp.Media, id: newID(), state: "connected", direction: dir, connected: t, alerting: t}
	switch sp.Media {
	case MediaVoice:
		cust.address = telURI(sp.From)
		cust.ani, cust.dnis, cust.aniName = telURI(sp.From), telURI(org), sp.Name
		if dir == "outbound" {
			cust.ani, cust.dnis = telURI(org), telURI(sp.From)
		}
		cm.self = &jsonAddress{Name: sp.Name, AddressNormalized: telURI(sp.From), AddressRaw: telURI(sp.From), AddressDisplayable: sp.From}
		cm.other = &jsonAddress{AddressNormalized: telURI(org), AddressRaw: telURI(org), AddressDisplayable: org}
		if !sp.NoRecording {
			c.recordingID = newID()
		}
	case MediaCallback:
		cust.address = telURI(sp.From)
		cm.callbackNumbers = []string{sp.From}
		cm.callbackName = sp.Name
		cm.campaignID = sp.Campaign
	case MediaChat:
		if e := emailIn(sp.From); e != "" {
			cust.attributes["context.email"] = e
		}
		if first, last, ok := strings.Cut(sp.Name, " "); ok {
			cust.attributes["context.firstName"], cust.attributes["context.lastName"] = first, last
		}
	case MediaEmail:
		cust.address = sp.From
		cm.subject = sp.Subject
		c.subject = sp.Subject
		c.inbound = email{id: newID(), from: sp.From, fromName: sp.Name, to: org, subject: sp.Subject,
			text: sp.Body, html: "<p>" + htmlEscape(sp.Body) + "</p>", at: t}
	case MediaMessage:
		c.messageType = strings.ToLower(sp.MessageType)
		if c.messageType == "" {
			c.messageType = "sms"
		}
		cm.msgType = c.messageType
		cust.address = sp.From
		cm.from = &jsonAddress{Name: sp.Name, AddressNormalized: sp.From}
		cm.to = &jsonAddress{AddressNormalized: org}
		if dir == "outbound" {
			cm.from, cm.to = cm.to, cm.from
		}
	case MediaSocial:
		c.messageType = strings.ToLower(sp.MessageType)
		if c.messageType == "" {
			c.messageType = "facebook"
		}
		cm.hub, cm.socialUser = c.messageType, sp.From
	}
	cust.comms = []*comm{cm}
	c.participants = append(c.participants, cust)
	if sp.Body != "" && sp.Media != MediaEmail {
		c.lines = append(c.lines, line{id: newID(), at: t, from: cust, text: sp.Body})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	queue := sp.Queue
	if queue == "" && sp.Campaign != "" {
		queue = s.campaigns[sp.Campaign].QueueID
	}
	if queue != "" {
		c.participants = append(c.participants, s.acd(c, queue, t))
	}
	if _, dup := s.convs[c.id]; !dup {
		s.order = append(s.order, c.id)
	}
	s.convs[c.id] = c
	conv := &Conversation{ID: c.id, s: s, c: c}
	conv.publishLocked()
	return conv
}

func emailIn(s string) string {
	if strings.Contains(s, "@") {
		return s
	}
	return ""
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// acd builds the ACD participant holding the conversation in a queue.
func (s *Server) acd(c *conversation, queue string, t time.Time) *participant {
	p := &participant{id: newID(), purpose: "acd", queueID: queue, queueName: s.queues[queue].Name, name: s.queues[queue].Name,
		start: t, connected: t, attributes: map[string]string{}}
	kind := c.media
	p.comms = []*comm{{kind: kind, id: newID(), state: "connected", direction: c.direction, connected: t, alerting: t,
		msgType: c.messageType, hub: hubOf(c)}}
	return p
}

func hubOf(c *conversation) string {
	if c.media == MediaSocial {
		return c.messageType
	}
	return ""
}

// historyKept is how many of a conversation's latest published states
// the server keeps (for Republish, PublishStale and Body): a long-running
// demo's emulator does not grow with every update it published.
const historyKept = 16

// publishLocked renders the topic body, records it and publishes it.
func (cv *Conversation) publishLocked() {
	body, err := json.Marshal(cv.c.render(false, cv.s))
	if err != nil {
		panic(err) // our own structs: cannot happen
	}
	h := cv.c.history
	if len(h) == historyKept {
		copy(h, h[1:])
		h = h[:historyKept-1]
	}
	cv.c.history = append(h, body)
	cv.s.publish(cv.c, body)
}

// step runs f on the conversation under the server lock and publishes.
func (cv *Conversation) step(f func(t time.Time)) {
	cv.s.mu.Lock()
	defer cv.s.mu.Unlock()
	f(now())
	cv.publishLocked()
}

func (cv *Conversation) leg(id string) *participant {
	for _, p := range cv.c.participants {
		if p.id == id {
			return p
		}
	}
	panic(fmt.Sprintf("genesystest: conversation %s has no participant %s", cv.ID, id))
}

func (cv *Conversation) currentQueue() string {
	for i := len(cv.c.participants) - 1; i >= 0; i-- {
		if p := cv.c.participants[i]; p.purpose == "acd" {
			return p.queueID
		}
	}
	return ""
}

func (cv *Conversation) customer() *participant {
	for _, p := range cv.c.participants {
		if p.purpose == "customer" || p.purpose == "external" {
			return p
		}
	}
	return nil
}

// Alert offers the conversation to an agent: a new agent participant whose
// communication is alerting. It returns the participant (leg) id.
func (cv *Conversation) Alert(userID string) string {
	var id string
	cv.step(func(t time.Time) {
		id = cv.addAgent(userID, cv.currentQueue(), t)
	})
	return id
}

func (cv *Conversation) addAgent(userID, queue string, t time.Time) string {
	c := cv.c
	u := cv.s.users[userID]
	wrap := !c.noWrapup
	p := &participant{id: newID(), purpose: "agent", userID: userID, name: u.Name, queueID: queue, start: t,
		wrapupRequired: wrap, attributes: map[string]string{}}
	if queue != "" {
		p.queueName = cv.s.queues[queue].Name
	}
	cm := &comm{kind: c.media, id: newID(), state: "alerting", direction: c.direction, alerting: t, acwRequired: wrap,
		msgType: c.messageType, hub: hubOf(c)}
	if cust := cv.customer(); cust != nil {
		if cc := cust.primary(); cc != nil {
			cm.from, cm.to, cm.subject = cc.from, cc.to, cc.subject
			cm.callbackNumbers, cm.callbackName, cm.campaignID = cc.callbackNumbers, cc.callbackName, cc.campaignID
			cm.socialUser = cc.socialUser
			if c.media == MediaVoice {
				cm.self = &jsonAddress{Name: u.Name, AddressNormalized: "sip:" + userID + "@localhost"}
				cm.other = cc.self
			}
		}
	}
	p.comms = []*comm{cm}
	c.participants = append(c.participants, p)
	return p.id
}

// Connect connects an alerting leg: the agent answers. The ACD participant
// leaves (routed), and for a callback the agent's call to the customer
// starts.
func (cv *Conversation) Connect(legID string) {
	cv.step(func(t time.Time) {
		p := cv.leg(legID)
		cm := p.primary()
		cm.state, cm.connected = "connected", t
		p.connected = t
		for _, q := range cv.c.participants {
			if q.purpose == "acd" && q.end.IsZero() {
				for _, qc := range q.comms {
					if qc.state != "disconnected" {
						qc.state, qc.dtype, qc.discon = "disconnected", "transfer", t
					}
				}
				q.end = t
			}
		}
		if cv.c.media == MediaCallback {
			cust := cv.customer()
			num := ""
			if cc := cust.primary(); cc != nil && len(cc.callbackNumbers) > 0 {
				num = cc.callbackNumbers[0]
			}
			call := &comm{kind: MediaVoice, id: newID(), state: "connected", direction: "outbound", connected: t, alerting: t,
				self: &jsonAddress{AddressNormalized: "sip:" + p.userID + "@localhost"}, other: &jsonAddress{AddressNormalized: telURI(num)}}
			p.comms = append([]*comm{call}, p.comms...)
			cust.comms = append([]*comm{{kind: MediaVoice, id: newID(), state: "connected", direction: "outbound", connected: t,
				self: &jsonAddress{AddressNormalized: telURI(num)}, other: &jsonAddress{AddressNormalized: telURI(cv.c.orgAddr)}}}, cust.comms...)
		}
	})
}

// endLeg disconnects every communication of p.
func endLeg(p *participant, dtype string, t time.Time) {
	for _, cm := range p.comms {
		if cm.state == "disconnected" {
			continue
		}
		cm.state, cm.dtype, cm.discon = "disconnected", dtype, t
		if cm.acwRequired && cm.wrapup == nil {
			cm.acwState, cm.acwStart = "pending", t
		}
	}
	if p.end.IsZero() {
		p.end = t
	}
}

// live reports whether any agent or ACD participant is still on.
func (cv *Conversation) live() bool {
	for _, p := range cv.c.participants {
		if (p.purpose == "agent" || p.purpose == "acd") && p.end.IsZero() {
			return true
		}
	}
	return false
}

// Transfer moves the conversation from an agent's leg to a queue (a blind
// transfer): the leg disconnects with disconnectType "transfer" (its
// wrap-up pending) and a new ACD participant holds the conversation in
// the queue, for the next Alert.
func (cv *Conversation) Transfer(legID, queueID string) {
	cv.step(func(t time.Time) {
		endLeg(cv.leg(legID), "transfer", t)
		cv.c.participants = append(cv.c.participants, cv.s.acd(cv.c, queueID, t))
	})
}

// TransferTo moves the conversation from an agent's leg straight to
// another agent, who is alerted on a new leg (returned).
func (cv *Conversation) TransferTo(legID, userID string) string {
	var id string
	cv.step(func(t time.Time) {
		p := cv.leg(legID)
		endLeg(p, "transfer", t)
		id = cv.addAgent(userID, "", t)
	})
	return id
}

// Consult starts an attended transfer from an agent's connected leg: the
// customer is put on hold and userID is alerted on a new leg (returned),
// which Connect connects. CompleteConsult then hands the conversation over.
func (cv *Conversation) Consult(legID, userID string) string {
	var id string
	cv.step(func(t time.Time) {
		if cust := cv.customer(); cust != nil {
			if cc := cust.primary(); cc != nil {
				cc.held = true
			}
		}
		id = cv.addAgent(userID, "", t)
	})
	return id
}

// CompleteConsult completes an attended transfer: the consulting agent's
// leg disconnects with disconnectType "transfer.consult" (its wrap-up
// pending) and the customer comes off hold, with the consulted agent.
func (cv *Conversation) CompleteConsult(legID string) {
	cv.step(func(t time.Time) {
		endLeg(cv.leg(legID), "transfer.consult", t)
		if cust := cv.customer(); cust != nil {
			if cc := cust.primary(); cc != nil {
				cc.held = false
			}
		}
	})
}

// Disconnect makes the agent leave (disconnectType "client"). When no
// other agent or queue holds the conversation, the customer is
// disconnected too and the conversation ends.
func (cv *Conversation) Disconnect(legID string) {
	cv.step(func(t time.Time) {
		endLeg(cv.leg(legID), "client", t)
		if !cv.live() {
			cv.endCustomer("peer", t)
		}
	})
}

// End makes the customer leave (hang up, close the chat): every
// participant still connected is disconnected and the conversation ends.
func (cv *Conversation) End() {
	cv.step(func(t time.Time) {
		cv.endCustomer("endpoint", t)
		for _, p := range cv.c.participants {
			if p.purpose != "customer" && p.purpose != "external" {
				endLeg(p, "peer", t)
			}
		}
	})
}

func (cv *Conversation) endCustomer(dtype string, t time.Time) {
	if cust := cv.customer(); cust != nil {
		endLeg(cust, dtype, t)
	}
	if cv.c.end.IsZero() {
		cv.c.end = t
	}
}

// Wrapup submits an agent's wrap-up (code, notes, tags) and completes
// their after-call work.
func (cv *Conversation) Wrapup(legID, code, notes string, tags ...string) {
	cv.step(func(t time.Time) {
		p := cv.leg(legID)
		d := 0
		if !p.end.IsZero() {
			d = int(t.Sub(p.end) / time.Second)
		}
		w := &jsonWrapup{Code: code, Notes: notes, Tags: tags, DurationSeconds: d, EndTime: tp(t)}
		for _, cm := range p.comms {
			cm.wrapup = w
			if cm.acwRequired {
				cm.acwState, cm.acwEnd = "complete", t
				if cm.acwStart.IsZero() {
					cm.acwStart = t
				}
			}
		}
	})
}

// Say adds a message to the chat, messaging or social transcript, or a
// phrase to a call's speech analytics transcript: from the customer when
// from is "" or "customer", else from the agent on leg from. It publishes
// nothing (Genesys sends message events on other topics); the text is
// served by the transcript endpoints.
func (cv *Conversation) Say(from, text string) {
	cv.s.mu.Lock()
	defer cv.s.mu.Unlock()
	p := cv.customer()
	if from != "" && from != "customer" {
		p = cv.leg(from)
	}
	cv.c.lines = append(cv.c.lines, line{id: newID(), at: now(), from: p, text: text})
}

// Reply records the agent's email reply.
func (cv *Conversation) Reply(text string) {
	cv.s.mu.Lock()
	defer cv.s.mu.Unlock()
	in := cv.c.inbound
	cv.c.reply = &email{id: newID(), from: in.to, to: in.from, subject: "RE: " + in.subject, text: text,
		html: "<p>" + htmlEscape(text) + "</p>", at: now()}
}

// Summarize sets the Genesys AI summary of the conversation.
func (cv *Conversation) Summarize(text string) {
	cv.s.mu.Lock()
	defer cv.s.mu.Unlock()
	cv.c.summary = text
}

// Republish sends the latest state again (an exact duplicate).
func (cv *Conversation) Republish() { cv.PublishStale(0) }

// PublishStale re-sends the state from back steps before the latest (an
// out-of-order update); back 0 is the latest, and at most 15 (the server
// keeps a conversation's last 16 states).
func (cv *Conversation) PublishStale(back int) {
	cv.s.mu.Lock()
	defer cv.s.mu.Unlock()
	h := cv.c.history
	if back < 0 || back >= len(h) {
		panic(fmt.Sprintf("genesystest: PublishStale(%d) with %d published states kept", back, len(h)))
	}
	cv.s.publish(cv.c, h[len(h)-1-back])
}

// Body returns the latest published event body (the eventBody of the
// frames), for tests and benchmarks.
func (cv *Conversation) Body() []byte {
	cv.s.mu.Lock()
	defer cv.s.mu.Unlock()
	return append([]byte(nil), cv.c.history[len(cv.c.history)-1]...)
}

// Frame returns the latest state as a complete notification frame on
// topic.
func (cv *Conversation) Frame(topic string) []byte {
	body := cv.Body()
	return []byte(`{"topicName":"` + topic + `","version":"2","eventBody":` + string(body) + `,"metadata":{"CorrelationId":"` + newID() + `"}}`)
}
