package genesys

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// Option configures a Source.
type Option func(*Source) error

// WithUsers subscribes to the conversations of these Genesys users
// (v2.users.{id}.conversations).
func WithUsers(ids ...string) Option {
	return func(s *Source) error {
		for _, id := range ids {
			if err := checkID("user", id); err != nil {
				return err
			}
			s.topics = append(s.topics, UserTopic(strings.TrimSpace(id)))
		}
		return nil
	}
}

// WithQueues subscribes to the conversations of these queues
// (v2.routing.queues.{id}.conversations).
func WithQueues(ids ...string) Option {
	return func(s *Source) error {
		for _, id := range ids {
			if err := checkID("queue", id); err != nil {
				return err
			}
			s.topics = append(s.topics, QueueTopic(strings.TrimSpace(id)))
		}
		return nil
	}
}

// WithSubscribe subscribes to the queues and users of a rules file's
// subscribe section.
func WithSubscribe(sub cti.Subscribe) Option {
	return func(s *Source) error {
		if err := WithQueues(sub.Queues...)(s); err != nil {
			return err
		}
		return WithUsers(sub.Users...)(s)
	}
}

func checkID(kind, id string) error {
	id = strings.TrimSpace(id)
	if id == "" || strings.ContainsAny(id, " ./*#?") {
		return &cti.ConfigError{Path: "subscribe." + kind + "s", Value: id, Reason: "not a Genesys " + kind + " id (a UUID)"}
	}
	return nil
}

// WithLogger sets the source's logger (connections, reconnects, skipped
// frames). Nil means silence (the default).
func WithLogger(l *slog.Logger) Option {
	return func(s *Source) error { s.log = l; return nil }
}

// WithDecoder sets the frame decoder, e.g. with a phone normalizer.
func WithDecoder(d *Decoder) Option {
	return func(s *Source) error {
		if d == nil {
			return errors.New("genesys: WithDecoder(nil)")
		}
		s.dec = d
		return nil
	}
}

// WithPhoneNormalizer sets the function that turns a customer's phone
// address into Customer.Phone (default DefaultPhone); plug a
// libphonenumber E.164 normalizer here, such as the Normalize method of a
// match.Normalizer shared with the matcher. f is called for every update,
// and every update of a conversation carries the same addresses, while
// libphonenumber parsing costs more than decoding the frame: f should
// remember its answers, as match.NewNormalizer's does.
func WithPhoneNormalizer(f func(string) string) Option {
	return func(s *Source) error {
		if f == nil {
			return errors.New("genesys: WithPhoneNormalizer(nil)")
		}
		d := *s.dec
		d.Phone = f
		s.dec = &d
		return nil
	}
}

// WithEnricher sets the enricher the source uses as a cti.Enricher
// (default: NewEnricher(client)). Nil disables enrichment.
func WithEnricher(e *Enricher) Option {
	return func(s *Source) error { s.enr = e; s.enrSet = true; return nil }
}

// WithoutAgentDetails delivers snapshots as decoded, without looking up
// the agents' names and emails first (by default they are filled, cached,
// so that a cti.Directory can map the agent at pop time).
func WithoutAgentDetails() Option {
	return func(s *Source) error { s.noAgents = true; return nil }
}

// Timing holds the source's durations; zero fields keep the defaults of
// DefaultTiming.
type Timing struct {
	// HeartbeatTimeout: a socket silent this long (no heartbeat, no frame,
	// no pong) is considered dead and replaced. Genesys sends a heartbeat
	// every 30 s. Default 75 s.
	HeartbeatTimeout time.Duration
	// RotateBefore: a channel is replaced this long before it expires (or
	// before the token it was created with expires), without a gap.
	// Default 10 minutes, at most a fifth of the channel's life.
	RotateBefore time.Duration
	// DialTimeout bounds creating a channel, subscribing and opening its
	// websocket. Default 30 s.
	DialTimeout time.Duration
	// TrackFor is how long a conversation that never finished is still
	// re-fetched after a reconnect. Default 24 h.
	TrackFor time.Duration
	// AgentLookup bounds the lookup of an agent's name and email before a
	// snapshot with a new agent is delivered. Default 5 s.
	AgentLookup time.Duration
	// LookBack bounds how far back the look-up after a notification gap
	// goes (see Backfill for restarts, which the engine bounds itself).
	// Keep it inside the handler's memory of finished conversations
	// (cti.Timing.Tombstone): a conversation that finished before a long
	// gap, and that the handler has since forgotten, would otherwise be
	// delivered, and synced, again. A longer gap's older part is not
	// looked up, with a warning. Default 1 h 50 min (the engine's default
	// Tombstone, 2 h, less 10 minutes).
	LookBack time.Duration
}

// DefaultTiming is used for zero Timing fields.
var DefaultTiming = Timing{HeartbeatTimeout: 75 * time.Second, RotateBefore: 10 * time.Minute, DialTimeout: 30 * time.Second,
	TrackFor: 24 * time.Hour, AgentLookup: 5 * time.Second, LookBack: 110 * time.Minute}

// WithTiming overrides the source's durations.
func WithTiming(t Timing) Option {
	return func(s *Source) error {
		for _, d := range []time.Duration{t.HeartbeatTimeout, t.RotateBefore, t.DialTimeout, t.TrackFor, t.AgentLookup, t.LookBack} {
			if d < 0 {
				return errors.New("genesys: negative duration in Timing")
			}
		}
		set := func(dst *time.Duration, v time.Duration) {
			if v > 0 {
				*dst = v
			}
		}
		set(&s.timing.HeartbeatTimeout, t.HeartbeatTimeout)
		set(&s.timing.RotateBefore, t.RotateBefore)
		set(&s.timing.DialTimeout, t.DialTimeout)
		set(&s.timing.TrackFor, t.TrackFor)
		set(&s.timing.AgentLookup, t.AgentLookup)
		set(&s.timing.LookBack, t.LookBack)
		return nil
	}
}

// DefaultReconnectBackoff waits about 1 s, 2 s, 4 s, ... up to a minute
// before reconnect attempt n (1, 2, ...), with ±50% jitter so that many
// clients do not reconnect in step.
func DefaultReconnectBackoff(n int) time.Duration {
	d := time.Second << min(max(n-1, 0), 6)
	return jitter(min(d, time.Minute), 0.5)
}

// WithReconnectBackoff sets the wait before reconnect attempt n.
func WithReconnectBackoff(f func(n int) time.Duration) Option {
	return func(s *Source) error {
		if f == nil {
			return errors.New("genesys: WithReconnectBackoff(nil)")
		}
		s.backoff = f
		return nil
	}
}

// WithChannelLimits sets the topics per channel (Genesys: 1,000) and the
// channels the source may hold (Genesys: 20 per OAuth client). NewSource
// fails when the topics need more channels than allowed, keeping one
// spare for a gapless rotation.
func WithChannelLimits(topicsPerChannel, maxChannels int) Option {
	return func(s *Source) error {
		if topicsPerChannel < 1 || topicsPerChannel > 1000 {
			return fmt.Errorf("genesys: topics per channel %d: must be 1..1000", topicsPerChannel)
		}
		if maxChannels < 2 || maxChannels > 20 {
			return fmt.Errorf("genesys: max channels %d: must be 2..20", maxChannels)
		}
		s.perChannel, s.maxChannels = topicsPerChannel, maxChannels
		return nil
	}
}

// WithDedupeWindow sets how many recent frame bodies are remembered to
// drop exact duplicates (default 4096).
func WithDedupeWindow(n int) Option {
	return func(s *Source) error {
		if n < 16 {
			return errors.New("genesys: dedupe window must be at least 16")
		}
		s.dedupe = newRecentSet(n)
		return nil
	}
}

func uniqueSorted(ss []string) []string {
	ss = slices.Clone(ss)
	slices.Sort(ss)
	return slices.Compact(ss)
}
