// Package cti is the domain of ctikit: the vocabulary of a Genesys Cloud ⇄
// Zendesk CTI integration, the small interfaces its parts are made of, and
// the Engine that runs them. It imports only the standard library and
// golang.org/x/sync; vendor adapters (packages genesys, zendesk, match,
// popup, syncmap) depend on it, never the reverse.
//
// # Vocabulary
//
// A Conversation is a snapshot of a Genesys conversation of any media
// (voice, callback, email, chat, and messaging on SMS, WhatsApp, Facebook,
// Instagram, X, LINE, web messaging and open messaging), with its
// Customer, its agent legs (AgentLeg, one per agent participant, each with
// its own timeline, wrap-up and after-call work), queue, campaign,
// attributes, transfers, links and end-of-conversation Content.
//
// Genesys re-sends the whole conversation on every change, on the queue
// topic and the user topic alike, sometimes out of order. The Engine folds
// snapshots together (Conversation.Merge: a leg's Phase only moves forward)
// and derives each leg's lifecycle Events exactly once: offered, connected,
// transferred, disconnected, wrap-up done (across a crash, see EventType).
//
// A Rule (from Rules, usually loaded by package cti/config) says per queue /
// campaign / media what to Identify, what to pop (Popup), when (PopOn), what
// to do with several matches (Multiple) or none (NoMatch), and what to Sync.
//
// # The flow
//
//		Source ──snapshots──▶ Engine ──Identity──▶ Matcher ──Result──▶ Strategy ──Decision──▶ Popper / Chooser
//		                        │
//		                        └── wrap-up done ──▶ Outbox ──▶ Enricher ──▶ Sink (FieldMapper inside)
//
//	  - Source delivers snapshots (package genesys reads the notification websocket).
//	  - Directory maps the Genesys agent to the Zendesk agent.
//	  - Matcher finds the records behind an identity (package match).
//	  - Strategy decides, purely, what to show, create or ask (package popup).
//	  - Popper performs it in the agent's Zendesk; Chooser asks the agent to
//	    pick when several match, and Engine.Choose brings the answer back.
//	  - After the leg's wrap-up (or the grace period when none is expected)
//	    the engine puts a SyncJob in the Outbox; the dispatcher runs the
//	    Enricher and hands it to the Sink, retrying transient failures with
//	    backoff and burying permanent ones in the dead letters; a BatchSink
//	    gets the jobs due together in one call (WithBatchWait lets a job
//	    wait a moment for company). A StateStore
//	    remembers what was popped and queued, so a restart neither pops nor
//	    syncs twice. MemoryStore is the in-memory default; package syncmap has
//	    a durable one.
//
// Every interface has a func adapter (MatcherFunc, PopperFunc, ...) and
// states its concurrency contract. Optional abilities are separate
// interfaces found by type assertion: Resumer, Backfiller and Enricher on a
// Source, BatchSink on a Sink, OutboxInspector on an Outbox, AliveStore on
// a StateStore (with a Backfiller source, a restart looks back to when the
// engine last ran), JobSaver on a Store (a done leg's job is written with
// the conversation's record, in one transaction).
//
// # Concurrency
//
// Engine.Run blocks and owns every goroutine it starts. Work for one
// conversation is serialized on one worker at a time (workers are pooled:
// an idle one waits a few seconds for the next conversation to act on);
// different conversations run in parallel, so an agent with a call and
// three chats is popped and synced for each on its own, and a slow or
// failing collaborator never holds up another conversation. Failures are
// logged with the conversation id and rule name (log/slog) and reported
// through Hooks.
//
// # Errors
//
// Sentinels (ErrNoMatch, ErrAmbiguous, ErrNotFound, ErrUnknownAgent,
// ErrNoChoice, ErrClosed, ErrInvalid) are for errors.Is. UpstreamError
// carries a vendor failure's status and Retry-After and says whether it is
// Retryable; IsRetryable and RetryAfter read them through any wrapping.
// ConfigError names the key path, value and fix of a configuration mistake.
package cti
