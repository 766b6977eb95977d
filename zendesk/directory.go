package zendesk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/cxplay/ctikit/cti"
)

// lookupTimeout bounds one shared directory or popper request.
const lookupTimeout = 30 * time.Second

// agentSource is what the directory needs from Zendesk.
type agentSource interface {
	User(ctx context.Context, id int64) (User, error)
	FindUsers(ctx context.Context, query string) ([]User, error)
}

// Directory maps Genesys agents to Zendesk agents (cti.Directory): by the
// override map first (Genesys user id or email → Zendesk agent id or
// email, the rules file's agents: section), else by the Genesys user's
// email. Lookups are cached (found agents for TTL, misses for NegativeTTL)
// and concurrent lookups of one agent make one request. A Genesys user
// without a Zendesk agent (no such email, or the user is an end user) is
// an error wrapping cti.ErrUnknownAgent; Zendesk failures are returned as
// they are (retryable *cti.UpstreamError) and not cached.
//
// Safe for concurrent use; no goroutines.
type Directory struct {
	src       agentSource
	overrides map[string]string // lower-cased key → value
	ttl, neg  time.Duration
	log       *slog.Logger
	now       func() time.Time

	sf    singleflight.Group
	mu    sync.Mutex
	cache map[string]dirEntry
}

type dirEntry struct {
	agent cti.Agent
	err   error // nil or wraps ErrUnknownAgent
	until time.Time
}

// DirectoryOption configures a Directory.
type DirectoryOption func(*Directory) error

// WithCacheTTL sets how long found agents (ttl) and unknown agents (neg)
// are remembered. Defaults: 1 hour and 5 minutes.
func WithCacheTTL(ttl, neg time.Duration) DirectoryOption {
	return func(d *Directory) error {
		if ttl <= 0 || neg <= 0 {
			return fmt.Errorf("zendesk: WithCacheTTL(%v, %v): want positive durations", ttl, neg)
		}
		d.ttl, d.neg = ttl, neg
		return nil
	}
}

// WithDirectoryLogger logs lookups at debug level; nil means silence.
func WithDirectoryLogger(l *slog.Logger) DirectoryOption {
	return func(d *Directory) error { d.log = l; return nil }
}

// NewDirectory returns a directory over c. overrides maps a Genesys user id
// or email (case-insensitive) to a Zendesk agent id ("361234567") or email;
// an empty key or value is an error naming it.
func NewDirectory(c *Client, overrides map[string]string, opts ...DirectoryOption) (*Directory, error) {
	if c == nil {
		return nil, errors.New("zendesk: NewDirectory: nil client")
	}
	return newDirectory(c, overrides, opts...)
}

func newDirectory(src agentSource, overrides map[string]string, opts ...DirectoryOption) (*Directory, error) {
	d := &Directory{src: src, overrides: map[string]string{}, ttl: time.Hour, neg: 5 * time.Minute,
		now: time.Now, cache: map[string]dirEntry{}}
	for k, v := range overrides {
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" || v == "" {
			return nil, &cti.ConfigError{Path: "agents." + k, Value: v, Reason: "map a Genesys user id or email to a Zendesk agent id or email; neither may be empty"}
		}
		if _, err := strconv.ParseInt(v, 10, 64); err != nil && !strings.Contains(v, "@") {
			return nil, &cti.ConfigError{Path: "agents." + k, Value: v, Reason: "want a Zendesk agent id (digits) or email"}
		}
		d.overrides[strings.ToLower(k)] = v
	}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Agent implements cti.Directory.
func (d *Directory) Agent(ctx context.Context, leg *cti.AgentLeg) (cti.Agent, error) {
	if leg == nil {
		return cti.Agent{}, fmt.Errorf("zendesk directory: %w: no agent leg", cti.ErrUnknownAgent)
	}
	target := ""
	for _, k := range []string{leg.UserID, leg.Email} {
		if v, ok := d.overrides[strings.ToLower(strings.TrimSpace(k))]; ok && k != "" {
			target = v
			break
		}
	}
	if target == "" {
		target = strings.ToLower(strings.TrimSpace(leg.Email))
	}
	if target == "" {
		return cti.Agent{}, fmt.Errorf("zendesk directory: %w: Genesys user %s has no email and no override in agents:", cti.ErrUnknownAgent, leg.UserID)
	}
	key := strings.ToLower(target)
	now := d.now()
	d.mu.Lock()
	e, ok := d.cache[key]
	d.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.agent, e.err
	}
	// The lookup runs detached from any one caller's cancellation (bounded
	// by lookupTimeout), so a caller giving up does not fail the others
	// waiting for the same agent; each caller still returns when its own
	// ctx is done.
	ch := d.sf.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		a, err := d.lookup(lctx, target)
		if err != nil && !errors.Is(err, cti.ErrUnknownAgent) {
			return nil, err // a Zendesk failure: not cached
		}
		ttl := d.ttl
		if err != nil {
			ttl = d.neg
		}
		d.mu.Lock()
		d.cache[key] = dirEntry{agent: a, err: err, until: d.now().Add(ttl)}
		d.mu.Unlock()
		return dirEntry{agent: a, err: err}, nil
	})
	var v any
	var err error
	select {
	case <-ctx.Done():
		return cti.Agent{}, fmt.Errorf("zendesk directory: looking up %s: %w", target, ctx.Err())
	case r := <-ch:
		v, err = r.Val, r.Err
	}
	if err != nil {
		return cti.Agent{}, fmt.Errorf("zendesk directory: looking up %s: %w", target, err)
	}
	ent := v.(dirEntry)
	if d.log != nil {
		d.log.Debug("zendesk: agent lookup", "genesys_user", leg.UserID, "target", target, "agent", ent.agent.ID, "error", ent.err)
	}
	return ent.agent, ent.err
}

func (d *Directory) lookup(ctx context.Context, target string) (cti.Agent, error) {
	if id, err := strconv.ParseInt(target, 10, 64); err == nil {
		u, err := d.src.User(ctx, id)
		if errors.Is(err, cti.ErrNotFound) {
			return cti.Agent{}, fmt.Errorf("zendesk directory: %w: no Zendesk user %d", cti.ErrUnknownAgent, id)
		}
		if err != nil {
			return cti.Agent{}, err
		}
		if !u.IsAgent() {
			return cti.Agent{}, fmt.Errorf("zendesk directory: %w: Zendesk user %d is an %s, not an agent", cti.ErrUnknownAgent, id, u.Role)
		}
		return cti.Agent{ID: u.ID, Email: u.Email, Name: u.Name}, nil
	}
	if strings.ContainsAny(target, `"`) {
		return cti.Agent{}, fmt.Errorf("zendesk directory: %w: %q is not an email", cti.ErrUnknownAgent, target)
	}
	users, err := d.src.FindUsers(ctx, `email:"`+target+`"`)
	if err != nil {
		return cti.Agent{}, err
	}
	var endUser bool
	for _, u := range users {
		if !strings.EqualFold(u.Email, target) {
			continue
		}
		if u.IsAgent() && !u.Suspended {
			return cti.Agent{ID: u.ID, Email: u.Email, Name: u.Name}, nil
		}
		endUser = true
	}
	if endUser {
		return cti.Agent{}, fmt.Errorf("zendesk directory: %w: %s is not an active Zendesk agent", cti.ErrUnknownAgent, target)
	}
	return cti.Agent{}, fmt.Errorf("zendesk directory: %w: no Zendesk agent with email %s", cti.ErrUnknownAgent, target)
}

// Forget drops every cached lookup (after agents were added in Zendesk).
func (d *Directory) Forget() {
	d.mu.Lock()
	clear(d.cache)
	d.mu.Unlock()
}
