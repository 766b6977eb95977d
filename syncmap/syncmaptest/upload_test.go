package syncmaptest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/syncmap/syncmaptest"
)

func TestFakeUploads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := syncmaptest.NewFake()
	id := f.AddTicket(syncmap.Ticket{Subject: "call"})
	upload := func(name, body string) (*syncmap.Upload, error) {
		return f.Upload(ctx, name, "", int64(len(body)), strings.NewReader(body))
	}
	status := func(err error) int {
		var ue *cti.UpstreamError
		if !errors.As(err, &ue) {
			return 0
		}
		return ue.Status
	}
	comment := func(tokens ...string) error {
		_, err := f.UpdateTicket(ctx, id, syncmap.TicketUpdate{Comment: &syncmap.CommentInput{Body: "files", Uploads: tokens}})
		return err
	}

	// Faults hit uploads like the other operations; a failed upload
	// stores nothing.
	f.Hook(func(op syncmaptest.Op) error {
		if op == syncmaptest.OpUpload {
			return &cti.UpstreamError{Service: "zendesk", Op: string(op), Status: 503}
		}
		return nil
	}, nil)
	if _, err := upload("a.mp3", "abc"); status(err) != 503 || !cti.IsRetryable(err) {
		t.Fatalf("hooked upload = %v, want a retryable 503", err)
	}
	f.Hook(nil, nil)
	f.Storm(1, time.Second)
	if _, err := upload("a.mp3", "abc"); status(err) != 429 {
		t.Fatalf("upload in a storm = %v, want 429", err)
	}
	if n := len(f.Uploads()); n != 0 || f.Count(syncmaptest.OpUpload) != 2 {
		t.Fatalf("%d uploads stored, %d counted after failures", n, f.Count(syncmaptest.OpUpload))
	}

	// The type comes from the name when not given; the body must match
	// its size.
	a, err := upload("a.mp3", "abc")
	if err != nil || a.Attachment.ContentType != "audio/mpeg" || a.Attachment.Size != 3 {
		t.Fatalf("Upload = %+v, %v", a, err)
	}
	if _, err := f.Upload(ctx, "short.mp3", "audio/mpeg", 10, strings.NewReader("abc")); err == nil {
		t.Fatal("a body shorter than its size was accepted")
	}
	if _, err := f.Upload(ctx, "long.mp3", "audio/mpeg", 2, strings.NewReader("abc")); err == nil {
		t.Fatal("a body longer than its size was accepted")
	}

	// Too large, known or found while reading.
	f.SetUploadLimit(4)
	for _, size := range []int64{5, -1} {
		_, err := f.Upload(ctx, "big.mp3", "audio/mpeg", size, strings.NewReader("12345"))
		if status(err) != 413 || cti.IsRetryable(err) || !errors.Is(err, cti.ErrInvalid) {
			t.Fatalf("Upload(size %d over the limit) = %v, want a 413 wrapping cti.ErrInvalid", size, err)
		}
	}
	f.SetUploadLimit(syncmaptest.DefaultUploadLimit)

	// Expiry: unattached uploads go, attached ones stay.
	b, _ := upload("b.txt", "bee")
	c, _ := upload("c.txt", "sea")
	if err := comment(a.Token, b.Token); err != nil {
		t.Fatal(err)
	}
	f.ExpireUploads()
	if _, _, ok := f.Content(c.Attachment.ContentURL); ok {
		t.Fatal("an expired upload is still served")
	}
	if data, ctype, ok := f.Content(b.Attachment.ContentURL); !ok || string(data) != "bee" || ctype != "text/plain" {
		t.Fatalf("attached upload content = %q, %q, %v", data, ctype, ok)
	}
	if _, _, err := f.Fetch(ctx, c.Attachment.ContentURL); !errors.Is(err, cti.ErrNotFound) {
		t.Fatalf("Fetch(expired) = %v, want cti.ErrNotFound", err)
	}
	f.SetUploadTTL(-time.Second) // born expired
	d, _ := upload("d.txt", "dee")
	if _, _, ok := f.Content(d.Attachment.ContentURL); ok {
		t.Fatal("an upload past its TTL is still served")
	}

	// Tokens that do not attach fail the whole write: expired, unknown,
	// attached already.
	before := len(f.Comments(id))
	for _, tok := range []string{c.Token, "nosuchtoken", a.Token} {
		if err := comment(tok); status(err) != 422 || cti.IsRetryable(err) {
			t.Fatalf("attaching %s = %v, want a 422", tok, err)
		}
	}
	cs := f.Comments(id)
	if len(cs) != before || len(cs[len(cs)-1].Attachments) != 2 {
		t.Fatalf("comments = %+v, want the one with a and b only", cs)
	}
	// Returned comments are copies.
	cs[len(cs)-1].Attachments[0].FileName = "changed"
	if got, _ := f.TicketComments(ctx, id); got[0].Attachments[0].FileName != "a.mp3" {
		t.Fatalf("a caller changed the stored attachment: %+v", got[0].Attachments)
	}

	for _, name := range []string{"", "a/b.mp3"} {
		if _, err := upload(name, "x"); !errors.Is(err, cti.ErrInvalid) {
			t.Fatalf("Upload(%q) = %v, want cti.ErrInvalid", name, err)
		}
	}
}
