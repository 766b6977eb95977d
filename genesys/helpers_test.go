package genesys_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	"github.com/cxplay/ctikit/genesys/genesystest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger logs to stderr with -v and GENESYS_TEST_LOG=1, else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("GENESYS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// env is an emulator and a client on it.
type env struct {
	srv    *genesystest.Server
	client *genesys.Client
}

func newEnv(t *testing.T, sopts ...genesystest.Option) *env {
	t.Helper()
	sopts = append([]genesystest.Option{genesystest.WithHeartbeat(40 * time.Millisecond)}, sopts...)
	srv := genesystest.NewServer(sopts...)
	t.Cleanup(srv.Close)
	cfg := genesys.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, APIURL: srv.URL}
	client, err := genesys.NewClient(cfg, genesys.WithClientLogger(testLogger()),
		genesys.WithRetryPolicy(genesys.RetryPolicy{Backoff: func(int) time.Duration { return 5 * time.Millisecond }, MaxWait: 2 * time.Second}),
		genesys.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return &env{srv: srv, client: client}
}

// fastTiming makes a source notice silence and reconnect quickly.
var fastTiming = genesys.Timing{HeartbeatTimeout: 400 * time.Millisecond, DialTimeout: 5 * time.Second}

func fastBackoff(int) time.Duration { return 20 * time.Millisecond }

// collector records delivered snapshots and merges them per conversation.
type collector struct {
	mu     sync.Mutex
	snaps  []*cti.Conversation
	merged map[string]*cti.Conversation
	notify chan struct{}
}

func newCollector() *collector {
	return &collector{merged: map[string]*cti.Conversation{}, notify: make(chan struct{}, 1)}
}

func (c *collector) HandleConversation(_ context.Context, conv *cti.Conversation) error {
	c.mu.Lock()
	c.snaps = append(c.snaps, conv.Clone())
	if m := c.merged[conv.ID]; m != nil {
		m.Merge(conv)
	} else {
		c.merged[conv.ID] = conv.Clone()
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

// get returns a copy of the merged conversation.
func (c *collector) get(id string) *cti.Conversation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.merged[id].Clone()
}

func (c *collector) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.snaps {
		if s.ID == id {
			n++
		}
	}
	return n
}

// wait waits until cond holds for the merged conversation id.
func (c *collector) wait(t *testing.T, id string, what string, cond func(*cti.Conversation) bool) *cti.Conversation {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if m := c.get(id); m != nil && cond(m) {
			return m
		}
		select {
		case <-c.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s on %s; have %+v", what, id, c.get(id))
		}
	}
}

// run starts src.Run in the background; stop cancels it and returns its error.
func run(t *testing.T, src *genesys.Source, h cti.Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("Run did not return within 10s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}

// waitReady waits until the source is connected and the emulator has
// topic subscribed on a live socket.
func waitReady(t *testing.T, e *env, src *genesys.Source, topics ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok := src.Ready() == nil
		for _, tp := range topics {
			ok = ok && e.srv.Subscribed(tp)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("source not ready: %v", src.Ready())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var fixedTime = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
