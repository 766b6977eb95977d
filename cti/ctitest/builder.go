// Package ctitest helps test code built on package cti: a scripted
// conversation builder, an in-memory Source, and the TestStore conformance
// suite that proves a cti.Store keeps its contract, in the spirit of
// testing/slogtest. The matcher suite is match/matchtest.TestMatcher.
package ctitest

import (
	"fmt"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// Builder scripts a conversation's life and hands out the snapshots Genesys
// would send at each step. Methods mutate the builder and return a deep
// copy of the whole conversation, as Genesys re-sends it on every change.
// Times advance by Step per call, from Start.
type Builder struct {
	c    cti.Conversation
	now  time.Time
	Step time.Duration
}

// Start is the default start time of built conversations.
var Start = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

// NewConversation starts a conversation of the given media, inbound.
func NewConversation(id string, media cti.Media) *Builder {
	b := &Builder{now: Start, Step: 5 * time.Second}
	b.c = cti.Conversation{ID: id, Media: media, Direction: cti.Inbound, StartTime: Start}
	return b
}

// NewMessage starts an inbound messaging conversation on a channel.
func NewMessage(id string, ch cti.Channel) *Builder {
	b := NewConversation(id, cti.MediaMessage)
	b.c.Channel = ch
	return b
}

func (b *Builder) tick() time.Time {
	b.now = b.now.Add(b.Step)
	return b.now
}

func (b *Builder) snap() *cti.Conversation {
	s := b.c.Clone()
	s.ObservedAt = time.Time{}
	return s
}

// Now is the builder's current time.
func (b *Builder) Now() time.Time { return b.now }

// Snapshot returns the current snapshot without changing anything.
func (b *Builder) Snapshot() *cti.Conversation { return b.snap() }

// Direction sets the direction.
func (b *Builder) Direction(d cti.Direction) *Builder { b.c.Direction = d; return b }

// Customer sets the customer.
func (b *Builder) Customer(c cti.Customer) *Builder { b.c.Customer = c; return b }

// Phone sets the customer's address and normalized phone.
func (b *Builder) Phone(e164 string) *Builder {
	b.c.Customer.Address, b.c.Customer.Phone = "tel:"+e164, e164
	return b
}

// Queue sets the ACD queue.
func (b *Builder) Queue(id, name string) *Builder { b.c.Queue = cti.Ref{ID: id, Name: name}; return b }

// Campaign sets the outbound campaign.
func (b *Builder) Campaign(id, name string) *Builder {
	b.c.Campaign = cti.Ref{ID: id, Name: name}
	return b
}

// Attr sets a participant attribute.
func (b *Builder) Attr(k, v string) *Builder {
	if b.c.Attributes == nil {
		b.c.Attributes = map[string]string{}
	}
	b.c.Attributes[k] = v
	return b
}

func (b *Builder) leg(id string) *cti.AgentLeg {
	l := b.c.Leg(id)
	if l == nil {
		panic(fmt.Sprintf("ctitest: no leg %q in conversation %s", id, b.c.ID))
	}
	return l
}

// Alert offers the conversation to a Genesys user on a new leg.
func (b *Builder) Alert(legID, userID string) *cti.Conversation {
	t := b.tick()
	b.c.Agents = append(b.c.Agents, cti.AgentLeg{
		ID: legID, UserID: userID, Name: "Agent " + userID, Email: userID + "@example.com",
		Queue: b.c.Queue, State: cti.LegAlerting, AlertTime: t, WrapupExpected: true,
	})
	return b.snap()
}

// NoWrapup marks a leg as not expecting a wrap-up.
func (b *Builder) NoWrapup(legID string) *Builder { b.leg(legID).WrapupExpected = false; return b }

// Connect connects a leg (and the customer, the first time).
func (b *Builder) Connect(legID string) *cti.Conversation {
	t := b.tick()
	l := b.leg(legID)
	l.State, l.ConnectedTime = cti.LegConnected, t
	if b.c.ConnectedTime.IsZero() {
		b.c.ConnectedTime = t
	}
	return b.snap()
}

// Disconnect ends a leg (the agent hung up).
func (b *Builder) Disconnect(legID string) *cti.Conversation {
	t := b.tick()
	l := b.leg(legID)
	l.State, l.EndTime, l.DisconnectType = cti.LegDisconnected, t, "client"
	if l.WrapupExpected {
		l.ACW = cti.ACWPending
	}
	return b.snap()
}

// End disconnects the customer: the conversation is over.
func (b *Builder) End() *cti.Conversation {
	b.c.EndTime = b.tick()
	return b.snap()
}

// Hangup disconnects the leg and the customer together.
func (b *Builder) Hangup(legID string) *cti.Conversation {
	t := b.tick()
	l := b.leg(legID)
	l.State, l.EndTime, l.DisconnectType = cti.LegDisconnected, t, "peer"
	if l.WrapupExpected {
		l.ACW = cti.ACWPending
	}
	b.c.EndTime = t
	return b.snap()
}

// Transfer moves the conversation from leg from (disconnected by transfer)
// to a new leg offered to userID, through queue q when not zero.
func (b *Builder) Transfer(from, toLeg, userID string, q cti.Ref) *cti.Conversation {
	t := b.tick()
	l := b.leg(from)
	l.State, l.EndTime, l.DisconnectType = cti.LegDisconnected, t, cti.DisconnectTransfer
	if l.WrapupExpected {
		l.ACW = cti.ACWPending
	}
	if !q.IsZero() {
		b.c.Queue = q
	}
	b.c.Transfers = append(b.c.Transfers, cti.Transfer{At: t, FromUser: cti.Ref{ID: l.UserID}, ToQueue: q, ToUser: cti.Ref{ID: userID}, Kind: cti.TransferBlind})
	b.c.Agents = append(b.c.Agents, cti.AgentLeg{
		ID: toLeg, UserID: userID, Name: "Agent " + userID, Email: userID + "@example.com",
		Queue: b.c.Queue, State: cti.LegAlerting, AlertTime: t, WrapupExpected: true,
	})
	return b.snap()
}

// Consult starts an attended transfer from leg from: userID is offered a
// new leg toLeg while from stays connected. CompleteConsult hands over.
func (b *Builder) Consult(from, toLeg, userID string) *cti.Conversation {
	t := b.tick()
	b.leg(from) // must exist
	b.c.Agents = append(b.c.Agents, cti.AgentLeg{
		ID: toLeg, UserID: userID, Name: "Agent " + userID, Email: userID + "@example.com",
		Queue: b.c.Queue, State: cti.LegAlerting, AlertTime: t, WrapupExpected: true,
	})
	return b.snap()
}

// CompleteConsult completes the attended transfer from leg from to the
// consulted agent's leg toLeg: from disconnects ("transfer.consult").
func (b *Builder) CompleteConsult(from, toLeg string) *cti.Conversation {
	t := b.tick()
	l := b.leg(from)
	l.State, l.EndTime, l.DisconnectType = cti.LegDisconnected, t, "transfer.consult"
	if l.WrapupExpected {
		l.ACW = cti.ACWPending
	}
	b.c.Transfers = append(b.c.Transfers, cti.Transfer{At: t, FromUser: cti.Ref{ID: l.UserID}, ToUser: cti.Ref{ID: b.leg(toLeg).UserID}, Kind: cti.TransferConsult})
	return b.snap()
}

// Wrapup submits the leg's wrap-up and completes after-call work.
func (b *Builder) Wrapup(legID, code, notes string) *cti.Conversation {
	t := b.tick()
	l := b.leg(legID)
	l.Wrapup = &cti.Wrapup{Code: code, Notes: notes, EndTime: t}
	l.ACW = cti.ACWComplete
	return b.snap()
}

// WrapupPending submits the wrap-up while after-call work is still pending.
func (b *Builder) WrapupPending(legID, code string) *cti.Conversation {
	t := b.tick()
	l := b.leg(legID)
	l.Wrapup = &cti.Wrapup{Code: code, EndTime: t}
	l.ACW = cti.ACWPending
	return b.snap()
}

// CompleteACW completes the leg's after-call work.
func (b *Builder) CompleteACW(legID string) *cti.Conversation {
	b.tick()
	b.leg(legID).ACW = cti.ACWComplete
	return b.snap()
}
