//go:build linux

package genesys_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

// TestNoStderrNoise: the SDK's default client (go-retryablehttp) prints a
// line to stderr for every request; ctikit's prints nothing, whatever
// happens. File descriptor 2 itself is captured, so package-level loggers
// created at start-up are caught too.
func TestNoStderrNoise(t *testing.T) {
	e := newEnv(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup3(int(w.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); out <- b }()

	ctx := context.Background()
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550900", Queue: gt.QueueSupport})
	_, _ = e.client.Conversation(ctx, conv.ID, nil)
	_, _ = e.client.Conversation(ctx, "missing", nil)
	e.srv.FailREST(gt.Fault{Status: http.StatusBadGateway, Times: 2})
	_, _ = e.client.Conversation(ctx, conv.ID, nil)
	e.srv.FailREST(gt.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Hour, Times: 1})
	_, _ = e.client.Conversation(ctx, conv.ID, nil)

	if err := syscall.Dup3(saved, 2, 0); err != nil {
		t.Fatal(err)
	}
	syscall.Close(saved)
	w.Close()
	if b := <-out; len(b) > 0 {
		t.Errorf("wrote to stderr: %q", b)
	}
}
