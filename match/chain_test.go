package match_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
)

func found(ids ...int64) cti.Matcher {
	return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		var res cti.Result
		for _, id := range ids {
			res.Records = append(res.Records, cti.Record{Kind: cti.KindUser, ID: id})
		}
		return res, nil
	})
}

func failing(err error) cti.Matcher {
	return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) { return cti.Result{}, err })
}

func TestFirst(t *testing.T) {
	t.Parallel()
	down := &cti.UpstreamError{Service: "crm", Status: 503}
	tests := []struct {
		name    string
		ms      []cti.Matcher
		want    int64 // 0: none
		wantErr error
	}{
		{"first non-empty wins", []cti.Matcher{found(), found(2), found(3)}, 2, nil},
		{"no match error counts as empty", []cti.Matcher{failing(cti.ErrNoMatch), found(3)}, 3, nil},
		{"failure falls back", []cti.Matcher{failing(down), found(3)}, 3, nil},
		{"failure beats empty", []cti.Matcher{failing(down), found()}, 0, down},
		{"all empty", []cti.Matcher{found(), failing(cti.ErrNoMatch)}, 0, nil},
		{"none", nil, 0, nil},
		{"nil skipped", []cti.Matcher{nil, found(4)}, 4, nil},
	}
	for _, tt := range tests {
		res, err := match.First(tt.ms...).Match(context.Background(), query("+14155551212"))
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
		}
		var got int64
		if len(res.Records) > 0 {
			got = res.Records[0].ID
		}
		if got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestFirstStopsOnDoneContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	asked := 0
	first := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		asked++
		cancel()
		return cti.Result{}, ctx.Err()
	})
	second := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		asked++
		return cti.Result{}, nil
	})
	_, err := match.First(first, second).Match(ctx, query("+1"))
	if !errors.Is(err, context.Canceled) || asked != 1 {
		t.Errorf("err %v after %d matchers, want Canceled after 1", err, asked)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	slow := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		<-ctx.Done()
		return cti.Result{}, ctx.Err()
	})
	start := time.Now()
	_, err := match.Timeout(20*time.Millisecond)(slow).Match(context.Background(), query("+1"))
	if !errors.Is(err, context.DeadlineExceeded) || !cti.IsRetryable(err) || time.Since(start) > time.Second {
		t.Errorf("err = %v after %v", err, time.Since(start))
	}
	if m := found(1); match.Timeout(0)(m) == nil {
		t.Error("Timeout(0) returned nil")
	}
}

func TestLog(t *testing.T) {
	t.Parallel()
	m := found(1)
	if got := match.Log(nil)(m); got == nil {
		t.Fatal("Log(nil) returned nil")
	}
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	match.Log(l)(m).Match(context.Background(), query("+14155551212"))
	match.Log(l)(failing(errors.New("boom"))).Match(context.Background(), query("+14155551212"))
	out := buf.String()
	for _, want := range []string{"level=DEBUG msg=match identity=phone:+14155551212", "records=1", "level=WARN msg=\"match failed\"", "error=boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
