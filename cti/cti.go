package cti

import (
	"context"
	"time"
)

// Handler receives conversation snapshots from a Source.
//
// HandleConversation takes ownership of c: the source must not touch it
// afterwards. It must return quickly (the engine only queues the snapshot;
// when that wakes the conversation's worker it yields first, so that the
// worker runs at once: with every P busy the caller may wait behind
// runnable goroutines) and is safe for concurrent use. It returns an error only when ctx is done
// or the receiver has stopped.
type Handler interface {
	HandleConversation(ctx context.Context, c *Conversation) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c *Conversation) error

// HandleConversation calls f(ctx, c).
func (f HandlerFunc) HandleConversation(ctx context.Context, c *Conversation) error { return f(ctx, c) }

// Source produces conversation snapshots, e.g. from the Genesys Cloud
// notification websocket.
//
// Run blocks, delivering every snapshot to h, until ctx is done (then it
// returns nil or ctx.Err()) or it fails for good (bad credentials, say).
// Reconnects, resubscriptions and re-fetches after a gap happen inside Run.
// Snapshots may arrive duplicated and out of order; the engine copes. Run
// is called once; every goroutine it starts has returned when Run returns.
type Source interface {
	Run(ctx context.Context, h Handler) error
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, h Handler) error

// Run calls f(ctx, h).
func (f SourceFunc) Run(ctx context.Context, h Handler) error { return f(ctx, h) }

// Resumer is an optional interface of a Source: before Run, the engine
// passes the ids of conversations it was tracking when the process last
// stopped, so the source fetches their current state (an end or wrap-up
// that happened while down is not lost). Called at most once, before Run.
type Resumer interface {
	Resume(ids []string)
}

// Backfiller is an optional interface of a Source that can look back for
// conversations it could not see: before Run, the engine passes the last
// time the previous run was known alive (see AliveStore), and the source
// looks up the conversations that had activity since then, so one that
// started and ended while the process was down is not lost. Called at most
// once, before Run, and only when the state store remembers a time; never
// further back than the engine remembers finished conversations
// (Timing.Tombstone less a few minutes), so that nothing synced before the
// downtime is synced again.
type Backfiller interface {
	Backfill(since time.Time)
}

// PendingLookups is an optional interface of a Backfiller that looks up
// its own gaps too (a dropped notification socket): PendingSince returns
// the start of the oldest span whose look-up has not finished, the
// Backfill span included (zero: none). The engine marks its AliveStore no
// later than that, so that when the process stops before a look-up is
// done, the next run looks back over the span again. Safe for concurrent
// use, also after Run returned.
type PendingLookups interface {
	PendingSince() time.Time
}

// Matcher finds the records behind one customer identity.
//
// Match returns records most recently updated first, at most MaxResults of
// them with Result.More set when there were more. No match is an empty
// Result and a nil error (implementations may also return ErrNoMatch).
// Failures are errors, ideally *UpstreamError. Safe for concurrent use.
type Matcher interface {
	Match(ctx context.Context, q Query) (Result, error)
}

// MatcherFunc adapts a function to Matcher.
type MatcherFunc func(ctx context.Context, q Query) (Result, error)

// Match calls f(ctx, q).
func (f MatcherFunc) Match(ctx context.Context, q Query) (Result, error) { return f(ctx, q) }

// DecideInput is what a Strategy decides from.
type DecideInput struct {
	Rule         *Rule
	Conversation *Conversation
	Leg          *AgentLeg
	// Identity is the identity that produced Result (the first one tried
	// when nothing matched; zero when the conversation had none).
	Identity Identity
	Result   Result
}

// Strategy is the pure pop-up decision: from matched records and a rule to
// what to show, create or ask. It does no I/O, is deterministic, and is
// safe for concurrent use.
type Strategy interface {
	Decide(in DecideInput) Decision
}

// StrategyFunc adapts a function to Strategy.
type StrategyFunc func(in DecideInput) Decision

// Decide calls f(in).
func (f StrategyFunc) Decide(in DecideInput) Decision { return f(in) }

// PopRequest asks a Popper to carry out a decision for one agent.
type PopRequest struct {
	Agent        Agent
	Conversation *Conversation // read-only
	Leg          *AgentLeg     // read-only
	Rule         *Rule
	Identity     Identity
	Decision     Decision // ActionShow or ActionCreate
}

// PopResult is what a Popper did.
type PopResult struct {
	// Shown is the record now on the agent's screen.
	Shown *Record `json:"shown,omitempty"`
	// Created lists records created to carry out the decision.
	Created []Record `json:"created,omitempty"`
}

// Popper carries out a decision for an agent: creates what ActionCreate
// asks for, then displays the record in the agent's Zendesk (Talk Partner
// Edition screen pop). Safe for concurrent use; one agent may receive pops
// for several conversations at once.
type Popper interface {
	Pop(ctx context.Context, req PopRequest) (PopResult, error)
}

// PopperFunc adapts a function to Popper.
type PopperFunc func(ctx context.Context, req PopRequest) (PopResult, error)

// Pop calls f(ctx, req).
func (f PopperFunc) Pop(ctx context.Context, req PopRequest) (PopResult, error) { return f(ctx, req) }

// Choice is a list of candidates an agent is asked to pick from.
type Choice struct {
	ConversationID string
	LegID          string
	Rule           string
	Agent          Agent
	Leg            AgentLeg
	Candidates     []Record
	More           bool
	// CanCreate says the agent may ask for a new record instead (the rule's
	// nomatch action creates something).
	CanCreate bool
}

// Chooser presents a Choice to the agent (the agent panel). Offer returns
// once the choice is on its way; the answer comes back later through
// Engine.Choose. Safe for concurrent use.
type Chooser interface {
	Offer(ctx context.Context, c Choice) error
}

// ChooserFunc adapts a function to Chooser.
type ChooserFunc func(ctx context.Context, c Choice) error

// Offer calls f(ctx, c).
func (f ChooserFunc) Offer(ctx context.Context, c Choice) error { return f(ctx, c) }

// Directory maps a Genesys agent to their Zendesk agent. It returns
// ErrUnknownAgent (wrapped) when there is none. Safe for concurrent use;
// implementations cache.
type Directory interface {
	Agent(ctx context.Context, leg *AgentLeg) (Agent, error)
}

// DirectoryFunc adapts a function to Directory.
type DirectoryFunc func(ctx context.Context, leg *AgentLeg) (Agent, error)

// Agent calls f(ctx, leg).
func (f DirectoryFunc) Agent(ctx context.Context, leg *AgentLeg) (Agent, error) { return f(ctx, leg) }

// Enricher adds end-of-conversation data (names, durations, transfers,
// recording link, email bodies, transcript, AI summary) to a finished
// conversation before it is synced. It modifies c in place and may be
// called again for the same conversation (on retry, or for late data), so
// it should cache. A retryable error makes the engine retry later; after a
// few failures the sync proceeds with what is known. Safe for concurrent
// use. A Source that implements Enricher is used as the engine's enricher
// unless one is given.
type Enricher interface {
	Enrich(ctx context.Context, c *Conversation) error
}

// EnricherFunc adapts a function to Enricher.
type EnricherFunc func(ctx context.Context, c *Conversation) error

// Enrich calls f(ctx, c).
func (f EnricherFunc) Enrich(ctx context.Context, c *Conversation) error { return f(ctx, c) }

// SyncJob is one end-of-conversation sync: one agent's segment of a
// finished conversation. Key is its idempotency key.
type SyncJob struct {
	Key            string        `json:"key"` // "conversationID/legID"
	ConversationID string        `json:"conversationId"`
	LegID          string        `json:"legId"`
	Rule           string        `json:"rule"`
	Conversation   *Conversation `json:"conversation"`
	Agent          *Agent        `json:"agent,omitempty"`
	// Popped is what was shown (or picked by) the agent, nil if nothing.
	Popped *Record `json:"popped,omitempty"`
	// Created lists records created by the pop for this conversation.
	Created []Record `json:"created,omitempty"`
	// Candidates are the records the identification found.
	Candidates []Record `json:"candidates,omitempty"`
	// Identity is the identity that found Candidates.
	Identity Identity `json:"identity,omitzero"`

	EnqueuedAt time.Time `json:"enqueuedAt"`
	// Tries counts deliveries started, recorded durably in the outbox
	// before the sink is called (the first with the job itself, when the
	// engine queues it): Tries == 1 means no earlier delivery can have
	// reached Zendesk, so a sink may skip its "already written?" check;
	// after a crash, even one before the first delivery, the next try
	// sees Tries > 1.
	Tries       int       `json:"tries,omitempty"`
	Attempts    int       `json:"attempts,omitempty"`  // failed attempts so far
	Deferrals   int       `json:"deferrals,omitempty"` // times the sink asked to come back later
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	// Checkpoint is what the sink said it had done when it last deferred
	// the job (Deferred.Checkpoint), kept across restarts; opaque to the
	// engine.
	Checkpoint string `json:"checkpoint,omitempty"`
}

// JobKey is the idempotency key of the sync of one agent leg.
func JobKey(conversationID, legID string) string { return conversationID + "/" + legID }

// Update is what a FieldMapper produces for a Zendesk ticket.
type Update struct {
	// Fields maps ticket field ids to values.
	Fields map[string]any `json:"fields,omitempty"`
	// Comment is the rendered comment; empty for none.
	Comment string   `json:"comment,omitempty"`
	Public  bool     `json:"public,omitempty"`
	Tags    []string `json:"tags,omitempty"`
}

// FieldMapper turns a finished conversation into ticket values. Safe for
// concurrent use; no I/O.
type FieldMapper interface {
	Map(ctx context.Context, job *SyncJob) (Update, error)
}

// FieldMapperFunc adapts a function to FieldMapper.
type FieldMapperFunc func(ctx context.Context, job *SyncJob) (Update, error)

// Map calls f(ctx, job).
func (f FieldMapperFunc) Map(ctx context.Context, job *SyncJob) (Update, error) { return f(ctx, job) }

// Sink writes a finished conversation into Zendesk.
//
// Sync must be idempotent by job.Key: the engine delivers at least once
// (after a crash between the write and the outbox acknowledgment it calls
// again), and the sink must then not write a second time. Return a
// retryable error (see IsRetryable) for a transient failure, a *Deferred to
// be called again later for late data, any other error for a permanent
// failure (the job goes to the dead letters). Safe for concurrent use; the
// engine never runs two jobs of one conversation at once.
type Sink interface {
	Sync(ctx context.Context, job *SyncJob) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, job *SyncJob) error

// Sync calls f(ctx, job).
func (f SinkFunc) Sync(ctx context.Context, job *SyncJob) error { return f(ctx, job) }

// BatchSink is an optional interface of a Sink that can write several jobs
// at once (Zendesk update_many). The engine uses it when several jobs are
// due together; errs[i] is the outcome of jobs[i], with the same meaning as
// Sync's error. len(errs) must equal len(jobs).
type BatchSink interface {
	Sink
	SyncBatch(ctx context.Context, jobs []*SyncJob) (errs []error)
}
