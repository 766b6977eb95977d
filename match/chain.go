package match

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// Middleware wraps a matcher with extra behaviour (caching, timeouts,
// logging).
type Middleware func(cti.Matcher) cti.Matcher

// Chain composes middlewares: Chain(a, b, c)(m) is a(b(c(m))). The first
// middleware is the outermost: it sees each query first and the result
// last. A typical order is Chain(Log(l), Cache(opts), Timeout(d)): log what
// the engine asked, answer from the cache when possible, and bound only the
// real searches. Nil middlewares are skipped.
func Chain(mw ...Middleware) Middleware {
	return func(m cti.Matcher) cti.Matcher {
		for i := len(mw) - 1; i >= 0; i-- {
			if mw[i] != nil {
				m = mw[i](m)
			}
		}
		return m
	}
}

// First returns a matcher that asks each matcher in order and returns the
// first non-empty result (a matcher returning cti.ErrNoMatch counts as
// empty). When a matcher fails, the next ones are still asked: a result
// from one of them wins; if none finds anything, the failure is returned
// (all failures, joined), never an empty result, so that "Zendesk was down"
// is not mistaken for "unknown customer". A done ctx stops the chain with
// ctx.Err(). With no matchers it finds nothing. Nil matchers are skipped.
func First(ms ...cti.Matcher) cti.Matcher {
	return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		var errs []error
		for i, m := range ms {
			if m == nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				return cti.Result{}, err
			}
			res, err := m.Match(ctx, q)
			switch {
			case errors.Is(err, cti.ErrNoMatch):
				continue
			case err != nil:
				if ctx.Err() != nil {
					return cti.Result{}, err
				}
				errs = append(errs, fmt.Errorf("matcher %d: %w", i, err))
				continue
			}
			if len(res.Records) > 0 {
				return res, nil
			}
		}
		if len(errs) > 0 {
			return cti.Result{}, errors.Join(errs...)
		}
		return cti.Result{}, nil
	})
}

// Timeout bounds each Match to d (d <= 0: no bound). The deadline error
// wraps context.DeadlineExceeded, which cti.IsRetryable counts as
// retryable.
func Timeout(d time.Duration) Middleware {
	return func(next cti.Matcher) cti.Matcher {
		if d <= 0 {
			return next
		}
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next.Match(ctx, q)
		})
	}
}

// Log logs each Match at debug level (failures at warn) with the identity,
// the number of records, More and the duration. A nil logger means silence:
// Log(nil) returns the matcher unchanged. Identity values are logged: they
// are personal data, keep the logger's destination appropriate.
func Log(l *slog.Logger) Middleware {
	return func(next cti.Matcher) cti.Matcher {
		if l == nil {
			return next
		}
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			start := time.Now()
			res, err := next.Match(ctx, q)
			attrs := []slog.Attr{
				slog.String("identity", q.Identity.Key()),
				slog.Bool("open_tickets", q.WithOpenTickets),
				slog.Int("records", len(res.Records)),
				slog.Bool("more", res.More),
				slog.Duration("took", time.Since(start)),
			}
			if err != nil && !errors.Is(err, cti.ErrNoMatch) {
				l.LogAttrs(ctx, slog.LevelWarn, "match failed", append(attrs, slog.String("error", err.Error()))...)
			} else {
				l.LogAttrs(ctx, slog.LevelDebug, "match", attrs...)
			}
			return res, err
		})
	}
}
