package cti

import (
	"strconv"
	"time"
)

// EventType is a lifecycle transition of an agent leg.
type EventType uint8

// Lifecycle events, derived by the engine from snapshots. Each fires
// exactly once per (conversation, agent leg), in this order; a leg that
// disconnects by transfer fires EventTransferred then EventDisconnected.
// Across a crash (not a clean stop: Run returning writes everything),
// the connected, transferred and disconnected events of a leg still in
// progress may fire again when its conversation resumes: the engine does
// not spend a state store write on them alone (it does once resumed).
const (
	EventOffered      EventType = iota + 1 // alerting to the agent
	EventConnected                         // the agent connected
	EventTransferred                       // the agent transferred the conversation away
	EventDisconnected                      // the agent left
	EventWrapupDone                        // wrap-up submitted and after-call work complete, or the grace period passed
)

var eventNames = [...]string{"", "offered", "connected", "transferred", "disconnected", "wrapup_done"}

func (t EventType) String() string {
	if int(t) < len(eventNames) && t > 0 {
		return eventNames[t]
	}
	return "event(" + strconv.Itoa(int(t)) + ")"
}

// Event is a lifecycle transition, delivered to Hooks.Event.
type Event struct {
	Type           EventType
	ConversationID string
	Rule           string // the leg's rule, "" when none applies
	Leg            AgentLeg
	// Conversation is a copy of the merged conversation; safe to keep.
	Conversation *Conversation
	At           time.Time
}

// PopNotice reports a pop attempt (or a choice offered) to Hooks.Pop.
type PopNotice struct {
	ConversationID string
	LegID          string
	UserID         string // Genesys user id
	Rule           string
	Agent          Agent
	Identity       Identity
	Decision       Decision
	Result         PopResult
	Err            error
	// Latency runs from the snapshot's ObservedAt to the end of the pop.
	Latency time.Duration
}

// SyncState is the outcome of a sync attempt.
type SyncState string

// Sync states reported to Hooks.Sync.
const (
	SyncQueued   SyncState = "queued"   // the job is in the outbox
	SyncDone     SyncState = "done"     // the sink accepted it
	SyncRetry    SyncState = "retry"    // a transient failure; retried at Next
	SyncDeferred SyncState = "deferred" // the sink asked to come back at Next
	SyncDead     SyncState = "dead"     // failed for good; in the dead letters
)

// SyncNotice reports a sync job's progress to Hooks.Sync.
type SyncNotice struct {
	Key            string
	ConversationID string
	LegID          string
	UserID         string
	Rule           string
	State          SyncState
	Attempts       int
	Next           time.Time
	Err            error
}

// ErrorNotice reports a failure the engine logged and moved past.
type ErrorNotice struct {
	ConversationID string
	LegID          string
	Rule           string
	// Stage is where it failed: "load", "save", "directory", "match",
	// "pop", "choose", "enqueue", "enrich", "sync", "outbox".
	Stage string
	Err   error
}

// Hooks observe the engine, for metrics and the agent panel. Every field is
// optional. Hooks are called synchronously from engine goroutines, possibly
// concurrently: they must be quick and safe for concurrent use.
type Hooks struct {
	Event     func(Event)
	Pop       func(PopNotice)
	Choice    func(Choice)
	Sync      func(SyncNotice)
	Error     func(ErrorNotice)
	Duplicate func(conversationID string) // a snapshot for a finished conversation was dropped
}
