package cti

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrNoMatch: no record matches the identity.
	ErrNoMatch = errors.New("cti: no match")
	// ErrAmbiguous: several records match where one was needed.
	ErrAmbiguous = errors.New("cti: ambiguous match")
	// ErrNotFound: the requested object does not exist (store key, record, ...).
	ErrNotFound = errors.New("cti: not found")
	// ErrUnknownAgent: the Genesys user has no Zendesk agent.
	ErrUnknownAgent = errors.New("cti: unknown agent")
	// ErrNoChoice: a choice was answered for a leg that is not waiting for one.
	ErrNoChoice = errors.New("cti: no choice pending")
	// ErrClosed: the engine is not running.
	ErrClosed = errors.New("cti: engine not running")
	// ErrInvalid: a value or configuration is invalid.
	ErrInvalid = errors.New("cti: invalid")
)

// UpstreamError is a failure of a call to Genesys Cloud or Zendesk.
// Adapters return it (wrapped or not) so that the engine and callers can
// decide to retry without knowing the vendor.
type UpstreamError struct {
	Service    string        // "zendesk", "genesys", ...
	Op         string        // what was attempted, e.g. "search users"
	Status     int           // HTTP status, 0 for transport errors
	RetryAfter time.Duration // from Retry-After, 0 when absent
	// Temporary marks a failure worth retrying even when the status alone
	// would not say so (a timeout, a dropped connection).
	Temporary bool
	Err       error // the underlying error; never contains credentials
}

func (e *UpstreamError) Error() string {
	s := e.Service
	if e.Op != "" {
		s += " " + e.Op
	}
	if e.Status != 0 {
		s += ": status " + strconv.Itoa(e.Status)
	}
	if e.RetryAfter > 0 {
		s += " (retry after " + e.RetryAfter.String() + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// Retryable reports whether repeating the call may succeed: 408, 409, 429,
// 5xx, and transport failures.
func (e *UpstreamError) Retryable() bool {
	if e.Temporary {
		return true
	}
	switch {
	case e.Status == 0:
		return e.Err == nil || IsRetryable(e.Err)
	case e.Status == 408, e.Status == 409, e.Status == 429, e.Status >= 500:
		return true
	}
	return false
}

// Deferred is returned by a Sink that did its work but wants the job run
// again later, e.g. when a recording or transcript is not available yet.
// The engine keeps the job in the outbox and retries it after After, without
// counting a failure.
type Deferred struct {
	After  time.Duration
	Reason string
	// Checkpoint, when set, is what the sink has done so far, in its own
	// terms: the engine keeps it with the job (SyncJob.Checkpoint, durably)
	// for the next delivery.
	Checkpoint string
}

func (d *Deferred) Error() string {
	return "deferred for " + d.After.String() + ": " + d.Reason
}

// Later returns a *Deferred error.
func Later(after time.Duration, reason string) error { return &Deferred{After: after, Reason: reason} }

// IsRetryable reports whether err is worth retrying: an UpstreamError that
// says so, anything with a Retryable() bool or Timeout() bool method that
// says so, a network error, or context.DeadlineExceeded from a call
// timeout. Cancellation is not retryable.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var d *Deferred
	if errors.As(err, &d) {
		return true
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// RetryAfter returns the server-requested wait carried by err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var d *Deferred
	if errors.As(err, &d) {
		return d.After, true
	}
	var u *UpstreamError
	if errors.As(err, &u) && u.RetryAfter > 0 {
		return u.RetryAfter, true
	}
	return 0, false
}

// ConfigError is a configuration mistake, naming the key path, the value
// and what to do about it.
type ConfigError struct {
	Path   string // e.g. "rules[0].when.media[1]"
	Value  string // the offending value, "" when missing
	Reason string // why it is wrong and how to fix it
	Line   int    // line in the config file, 0 when unknown
}

func (e *ConfigError) Error() string {
	s := e.Path
	if e.Line > 0 {
		s = fmt.Sprintf("line %d: %s", e.Line, e.Path)
	}
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", s, e.Reason)
	}
	return fmt.Sprintf("%s: %q: %s", s, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true for configuration errors.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalid }
