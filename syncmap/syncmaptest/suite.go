package syncmaptest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
)

// Env is what TestZendesk runs against.
type Env struct {
	// Zendesk is the implementation under test, on an empty account.
	Zendesk syncmap.Zendesk
	// RequesterID is an existing end user; AgentID an existing agent.
	RequesterID, AgentID int64
	// FieldID is an existing text ticket field.
	FieldID int64
	// RejectedFieldID and RejectedValue, when set, are a field and value
	// the account rejects with a 422 (a drop-down given an unknown option).
	RejectedFieldID int64
	RejectedValue   any
	// TalkAppID, when set, runs the Talk Partner Edition call checks.
	TalkAppID int64
	// Fetch, when set, gets an attachment's content_url (an HTTP GET,
	// without credentials) and returns the body and Content-Type: the
	// uploads check then reads back the bytes it uploaded.
	Fetch func(ctx context.Context, contentURL string) (body []byte, contentType string, err error)
}

// missingID is a ticket and call id no account has.
const missingID = 987_654_321_012

// TestZendesk checks that an implementation of syncmap.Zendesk keeps the
// contracts the sink relies on: atomic ticket writes with additional tags,
// lookups by external id, 404 as cti.ErrNotFound, update_many results in
// order, comments newest first, 422 naming the rejected field as a
// *syncmap.FieldError, call records whose voice comment names the call,
// and, when the implementation is a syncmap.Uploader, uploads attached
// through a comment's uploads and listed in its attachments (served at
// their content_url when Env.Fetch is set). newEnv is called once per
// subtest.
func TestZendesk(t *testing.T, newEnv func(t *testing.T) Env) {
	t.Helper()
	ctx := context.Background()

	create := func(t *testing.T, env Env, ext string) *syncmap.Ticket {
		t.Helper()
		tk, err := env.Zendesk.CreateTicket(ctx, syncmap.NewTicket{
			Subject: "Call from +14155550100", RequesterID: env.RequesterID, AssigneeID: env.AgentID, ExternalID: ext,
			Comment:      &syncmap.CommentInput{Body: "first", Public: false, AuthorID: env.AgentID},
			Tags:         []string{"genesys", "ctikit_0123456789abcdef"},
			CustomFields: []syncmap.CustomField{{ID: env.FieldID, Value: "0:04:05"}},
		})
		if err != nil {
			t.Fatalf("CreateTicket: %v", err)
		}
		if tk.ID == 0 || tk.ExternalID != ext {
			t.Fatalf("CreateTicket = %+v, want an id and external id %q", tk, ext)
		}
		return tk
	}

	t.Run("CreateReadFind", func(t *testing.T) {
		env := newEnv(t)
		tk := create(t, env, "ctikit_aaaa000000000001")
		got, err := env.Zendesk.Ticket(ctx, tk.ID)
		if err != nil {
			t.Fatalf("Ticket: %v", err)
		}
		if !got.HasTag("genesys") || !got.HasTag("ctikit_0123456789abcdef") || got.RequesterID != env.RequesterID {
			t.Fatalf("Ticket = %+v, want the tags and requester written", got)
		}
		if !hasField(got.CustomFields, env.FieldID, "0:04:05") {
			t.Fatalf("Ticket custom fields = %v, want %d = 0:04:05", got.CustomFields, env.FieldID)
		}
		found, err := env.Zendesk.TicketsByExternalID(ctx, "ctikit_aaaa000000000001")
		if err != nil || len(found) != 1 || found[0].ID != tk.ID {
			t.Fatalf("TicketsByExternalID = %v, %v; want [%d]", ids(found), err, tk.ID)
		}
		none, err := env.Zendesk.TicketsByExternalID(ctx, "ctikit_ffff000000000009")
		if err != nil || len(none) != 0 {
			t.Fatalf("TicketsByExternalID(unknown) = %v, %v; want none, nil", ids(none), err)
		}
		many, err := env.Zendesk.Tickets(ctx, []int64{tk.ID, missingID})
		if err != nil || len(many) != 1 || many[0].ID != tk.ID {
			t.Fatalf("Tickets([%d, missing]) = %v, %v; want only the existing one", tk.ID, ids(many), err)
		}
		req, err := env.Zendesk.RequestedTickets(ctx, env.RequesterID)
		if err != nil || !slices.ContainsFunc(req, func(x syncmap.Ticket) bool { return x.ID == tk.ID }) {
			t.Fatalf("RequestedTickets = %v, %v; want it to include %d", ids(req), err, tk.ID)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		env := newEnv(t)
		if _, err := env.Zendesk.Ticket(ctx, missingID); !errors.Is(err, cti.ErrNotFound) {
			t.Fatalf("Ticket(missing) = %v, want cti.ErrNotFound", err)
		}
		if _, err := env.Zendesk.UpdateTicket(ctx, missingID, syncmap.TicketUpdate{AdditionalTags: []string{"x"}}); !errors.Is(err, cti.ErrNotFound) {
			t.Fatalf("UpdateTicket(missing) = %v, want cti.ErrNotFound", err)
		}
		if _, err := env.Zendesk.TicketComments(ctx, missingID); !errors.Is(err, cti.ErrNotFound) {
			t.Fatalf("TicketComments(missing) = %v, want cti.ErrNotFound", err)
		}
		var u *cti.UpstreamError
		_, err := env.Zendesk.Ticket(ctx, missingID)
		if !errors.As(err, &u) || u.Status != 404 || u.Retryable() {
			t.Fatalf("Ticket(missing) = %#v, want a *cti.UpstreamError with status 404, not retryable", err)
		}
	})

	t.Run("UpdateIsAtomicAndAddsTags", func(t *testing.T) {
		env := newEnv(t)
		tk := create(t, env, "ctikit_aaaa000000000002")
		_, err := env.Zendesk.UpdateTicket(ctx, tk.ID, syncmap.TicketUpdate{
			Comment:        &syncmap.CommentInput{Body: "second\nline", Public: true, AuthorID: env.AgentID},
			AdditionalTags: []string{"ctikit_fedcba9876543210"},
			CustomFields:   []syncmap.CustomField{{ID: env.FieldID, Value: "0:10:00"}},
		})
		if err != nil {
			t.Fatalf("UpdateTicket: %v", err)
		}
		got, err := env.Zendesk.Ticket(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.HasTag("genesys") || !got.HasTag("ctikit_fedcba9876543210") {
			t.Fatalf("tags = %v, want the old ones kept and the additional one added", got.Tags)
		}
		if !hasField(got.CustomFields, env.FieldID, "0:10:00") {
			t.Fatalf("custom fields = %v, want %d = 0:10:00", got.CustomFields, env.FieldID)
		}
		cs, err := env.Zendesk.TicketComments(ctx, tk.ID)
		if err != nil || len(cs) < 2 {
			t.Fatalf("TicketComments = %d comments, %v; want 2", len(cs), err)
		}
		if !strings.Contains(cs[0].Body, "second") || !cs[0].Public || strings.Contains(cs[1].Body, "second") || cs[1].Public {
			t.Fatalf("TicketComments = %+v, want newest (public) first", cs)
		}
		if env.RejectedFieldID == 0 {
			return
		}
		_, err = env.Zendesk.UpdateTicket(ctx, tk.ID, syncmap.TicketUpdate{
			Comment:        &syncmap.CommentInput{Body: "third"},
			AdditionalTags: []string{"must_not_stick"},
			CustomFields:   []syncmap.CustomField{{ID: env.RejectedFieldID, Value: env.RejectedValue}},
		})
		if got := syncmap.RejectedFields(err); !slices.Contains(got, env.RejectedFieldID) {
			t.Fatalf("UpdateTicket(bad field) = %v, want a *syncmap.FieldError naming %d", err, env.RejectedFieldID)
		}
		after, _ := env.Zendesk.Ticket(ctx, tk.ID)
		cs2, _ := env.Zendesk.TicketComments(ctx, tk.ID)
		if after.HasTag("must_not_stick") || len(cs2) != len(cs) {
			t.Fatalf("a rejected update changed the ticket: tags %v, %d comments (was %d)", after.Tags, len(cs2), len(cs))
		}
	})

	t.Run("UpdateMany", func(t *testing.T) {
		env := newEnv(t)
		a := create(t, env, "ctikit_aaaa000000000003")
		b := create(t, env, "ctikit_aaaa000000000004")
		res, err := env.Zendesk.UpdateMany(ctx, []syncmap.TicketUpdate{
			{ID: b.ID, Comment: &syncmap.CommentInput{Body: "to b"}, AdditionalTags: []string{"mark_b"}},
			{ID: missingID, Comment: &syncmap.CommentInput{Body: "to nowhere"}},
			{ID: a.ID, Comment: &syncmap.CommentInput{Body: "to a"}, AdditionalTags: []string{"mark_a"}},
		})
		if err != nil {
			t.Fatalf("UpdateMany: %v", err)
		}
		if len(res) != 3 || res[0].ID != b.ID || !res[0].Success || res[1].Success || res[2].ID != a.ID || !res[2].Success {
			t.Fatalf("UpdateMany results = %+v, want [b ok, missing failed, a ok]", res)
		}
		if !errors.Is(res[1].Err, cti.ErrNotFound) {
			t.Fatalf("result for a missing ticket: Err = %v, want cti.ErrNotFound", res[1].Err)
		}
		for id, tag := range map[int64]string{a.ID: "mark_a", b.ID: "mark_b"} {
			got, err := env.Zendesk.Ticket(ctx, id)
			if err != nil || !got.HasTag(tag) {
				t.Fatalf("after UpdateMany ticket %d tags = %v (%v), want %s", id, got.Tags, err, tag)
			}
		}
		if _, err := env.Zendesk.UpdateMany(ctx, make([]syncmap.TicketUpdate, 101)); !errors.Is(err, cti.ErrInvalid) {
			t.Fatalf("UpdateMany(101) = %v, want cti.ErrInvalid", err)
		}
	})

	t.Run("CreateMany", func(t *testing.T) {
		env := newEnv(t)
		mc, ok := env.Zendesk.(syncmap.ManyCreator)
		if !ok {
			t.Skip("the implementation does not create many tickets at once (syncmap.ManyCreator)")
		}
		nt := func(ext string, fields ...syncmap.CustomField) syncmap.NewTicket {
			return syncmap.NewTicket{Subject: "Call " + ext, RequesterID: env.RequesterID, AssigneeID: env.AgentID, ExternalID: ext,
				Comment: &syncmap.CommentInput{Body: "first " + ext, AuthorID: env.AgentID}, Tags: []string{"genesys", ext},
				CustomFields: fields}
		}
		batch := []syncmap.NewTicket{nt("ctikit_cccc000000000001"), nt("ctikit_cccc000000000002")}
		if env.RejectedFieldID != 0 {
			batch = append(batch, nt("ctikit_cccc000000000003", syncmap.CustomField{ID: env.RejectedFieldID, Value: env.RejectedValue}))
		}
		batch = append(batch, nt("ctikit_cccc000000000004", syncmap.CustomField{ID: env.FieldID, Value: "0:01:00"}))
		res, err := mc.CreateMany(ctx, batch)
		if err != nil {
			t.Fatalf("CreateMany: %v", err)
		}
		if len(res) != len(batch) {
			t.Fatalf("CreateMany gave %d results for %d tickets", len(res), len(batch))
		}
		for i, r := range res {
			ext := batch[i].ExternalID
			if ext == "ctikit_cccc000000000003" {
				var fe *syncmap.FieldError
				if r.Err == nil || r.ID != 0 || !errors.As(r.Err, &fe) || !slices.Contains(fe.FieldIDs, env.RejectedFieldID) {
					t.Fatalf("result %d (rejected field) = %+v, want no id and a *FieldError naming %d", i, r, env.RejectedFieldID)
				}
				if found, _ := env.Zendesk.TicketsByExternalID(ctx, ext); len(found) != 0 {
					t.Fatalf("a ticket whose create failed exists: %v", ids(found))
				}
				continue
			}
			if r.Err != nil || r.ID == 0 {
				t.Fatalf("result %d = %+v, want the new ticket's id", i, r)
			}
			got, err := env.Zendesk.Ticket(ctx, r.ID)
			if err != nil || got.ExternalID != ext || !got.HasTag(ext) || got.RequesterID != env.RequesterID {
				t.Fatalf("ticket of result %d = %+v, %v; want external id, tag and requester %d", i, got, err, env.RequesterID)
			}
			cs, err := env.Zendesk.TicketComments(ctx, r.ID)
			if err != nil || len(cs) != 1 || !strings.Contains(cs[0].Body, "first "+ext) {
				t.Fatalf("comments of result %d = %+v, %v; want the first comment", i, cs, err)
			}
		}
		if _, err := mc.CreateMany(ctx, make([]syncmap.NewTicket, 101)); !errors.Is(err, cti.ErrInvalid) {
			t.Fatalf("CreateMany(101) = %v, want cti.ErrInvalid", err)
		}
	})

	t.Run("Calls", func(t *testing.T) {
		env := newEnv(t)
		if env.TalkAppID == 0 {
			t.Skip("no Talk Partner Edition app id")
		}
		tk := create(t, env, "ctikit_aaaa000000000005")
		start := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
		call, err := env.Zendesk.CreateCall(ctx, syncmap.Call{
			AppID: env.TalkAppID, ExternalID: "ctikit_call00000000001", TicketID: tk.ID, AgentID: env.AgentID,
			FromLine: "+14155550100", ToLine: "+14155550199", Direction: "inbound", CallStartedAt: start,
			CallEndedAt: start.Add(4 * time.Minute), Duration: 240,
			Comment: &syncmap.CallComment{AuthorID: env.AgentID, Title: "Genesys Cloud: inbound call"},
		})
		if err != nil || call.ID == 0 {
			t.Fatalf("CreateCall = %+v, %v", call, err)
		}
		cs, err := env.Zendesk.TicketComments(ctx, tk.ID)
		if err != nil || len(cs) == 0 || cs[0].CallID != call.ID {
			t.Fatalf("TicketComments after CreateCall = %+v, %v; want the voice comment first, naming call %d", cs, err, call.ID)
		}
		if _, err := env.Zendesk.UpdateCall(ctx, call.ID, syncmap.Call{RecordingURL: "https://rec.example/1"}); err != nil {
			t.Fatalf("UpdateCall: %v", err)
		}
		got, err := env.Zendesk.Call(ctx, call.ID)
		if err != nil || got.ExternalID != "ctikit_call00000000001" || got.RecordingURL != "https://rec.example/1" || got.Duration != 240 {
			t.Fatalf("Call = %+v, %v; want the external id, the recording and the duration kept", got, err)
		}
		if _, err := env.Zendesk.Call(ctx, missingID); !errors.Is(err, cti.ErrNotFound) {
			t.Fatalf("Call(missing) = %v, want cti.ErrNotFound", err)
		}
	})

	t.Run("Uploads", func(t *testing.T) {
		env := newEnv(t)
		up, ok := env.Zendesk.(syncmap.Uploader)
		if !ok {
			t.Skip("the implementation does not upload files (syncmap.Uploader)")
		}
		tk := create(t, env, "ctikit_aaaa000000000006")
		audio := bytes.Repeat([]byte("ctikit recording "), 100)
		before := time.Now()
		rec, err := up.Upload(ctx, "recording.mp3", "audio/mpeg", int64(len(audio)), &onceReader{bytes.NewReader(audio)})
		if err != nil {
			t.Fatalf("Upload: %v", err)
		}
		a := rec.Attachment
		if rec.Token == "" || !rec.ExpiresAt.After(before) || a.ID == 0 || a.FileName != "recording.mp3" ||
			a.ContentType != "audio/mpeg" || a.Size != int64(len(audio)) || a.ContentURL == "" {
			t.Fatalf("Upload = %+v, want a token, a later expiry and the attachment's name, type, size and content_url", rec)
		}
		text := "Agent: thank you for calling"
		tr, err := up.Upload(ctx, "transcript.txt", "text/plain", -1, &onceReader{strings.NewReader(text)})
		if err != nil {
			t.Fatalf("Upload(size -1): %v", err)
		}
		if tr.Token == "" || tr.Token == rec.Token || tr.Attachment.Size != int64(len(text)) || tr.Attachment.ContentURL == a.ContentURL {
			t.Fatalf("Upload(size -1) = %+v, want its own token and content_url and size %d", tr, len(text))
		}

		if _, err := env.Zendesk.UpdateTicket(ctx, tk.ID, syncmap.TicketUpdate{
			Comment: &syncmap.CommentInput{Body: "Recording of the call", AuthorID: env.AgentID, Uploads: []string{rec.Token}},
		}); err != nil {
			t.Fatalf("UpdateTicket with an upload: %v", err)
		}
		res, err := env.Zendesk.UpdateMany(ctx, []syncmap.TicketUpdate{
			{ID: tk.ID, Comment: &syncmap.CommentInput{Body: "Transcript of the call", AuthorID: env.AgentID, Uploads: []string{tr.Token}}},
		})
		if err != nil || len(res) != 1 || !res[0].Success {
			t.Fatalf("UpdateMany with an upload = %+v, %v", res, err)
		}
		cs, err := env.Zendesk.TicketComments(ctx, tk.ID)
		if err != nil || len(cs) != 3 {
			t.Fatalf("TicketComments = %d comments, %v; want 3", len(cs), err)
		}
		for i, want := range []syncmap.Attachment{tr.Attachment, a} {
			got := cs[i].Attachments
			if len(got) != 1 || got[0].ContentURL != want.ContentURL || got[0].ID != want.ID || got[0].FileName != want.FileName ||
				got[0].Size != want.Size {
				t.Fatalf("comment %d (%q) attachments = %+v, want %+v", i, cs[i].Body, got, want)
			}
		}
		if len(cs[2].Attachments) != 0 {
			t.Fatalf("the first comment has attachments: %+v", cs[2].Attachments)
		}
		if env.Fetch != nil {
			for _, f := range []struct {
				url   string
				body  []byte
				ctype string
			}{{a.ContentURL, audio, "audio/mpeg"}, {tr.Attachment.ContentURL, []byte(text), "text/plain"}} {
				body, ctype, err := env.Fetch(ctx, f.url)
				if err != nil || !bytes.Equal(body, f.body) || !strings.HasPrefix(ctype, f.ctype) {
					t.Fatalf("Fetch(%s) = %d bytes, %q, %v; want the %d bytes uploaded, %s", f.url, len(body), ctype, err, len(f.body), f.ctype)
				}
			}
		}
		for _, name := range []string{"", "calls/recording.mp3"} {
			if _, err := up.Upload(ctx, name, "audio/mpeg", 3, strings.NewReader("abc")); !errors.Is(err, cti.ErrInvalid) {
				t.Fatalf("Upload(name %q) = %v, want cti.ErrInvalid", name, err)
			}
		}
	})
}

// onceReader is a body that reads once and cannot be rewound or sized,
// like a recording streamed from elsewhere.
type onceReader struct{ r io.Reader }

func (o *onceReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func hasField(fs []syncmap.CustomField, id int64, v string) bool {
	return slices.ContainsFunc(fs, func(f syncmap.CustomField) bool { return f.ID == id && f.Value == v })
}

func ids(ts []syncmap.Ticket) []int64 {
	var out []int64
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}
