package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/examples/server/internal/panel"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"github.com/cxplay/ctikit/internal/testlog"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// demoRig runs the server in demo mode, in-process, without the traffic
// simulator: tests script conversations on the Genesys emulator.
type demoRig struct {
	t    *testing.T
	demo *Demo
	app  *App
	base string
	logs *testlog.Buffer
	stop func()
}

func startDemo(t *testing.T) *demoRig { return startDemoWith(t, nil) }

// startDemoWith is startDemo with the setup changed by edit first.
func startDemoWith(t *testing.T, edit func(*Setup)) *demoRig {
	t.Helper()
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := StartDemo(log)
	require.NoError(t, err)
	setup := d.Setup("127.0.0.1:0", t.TempDir(), log)
	if edit != nil {
		edit(&setup)
	}
	app, err := Build(setup)
	require.NoError(t, err)
	addr, err := app.Listen()
	require.NoError(t, err)
	for _, a := range demoAgents {
		app.Panel.AddAgent(a.genesys, a.zendesk)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	r := &demoRig{t: t, demo: d, app: app, base: "http://" + addr.String(), logs: logs}
	r.stop = func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
		d.Close()
	}
	t.Cleanup(r.stop)
	r.eventually("healthz 200", func() bool { return r.get("/healthz").StatusCode == 200 })
	return r
}

func (r *demoRig) get(path string) *http.Response {
	r.t.Helper()
	resp, err := http.Get(r.base + path)
	require.NoError(r.t, err)
	resp.Body.Close()
	return resp
}

// answeredCall plays a whole voice call of a known caller (Jane,
// +14155550101) to Alice: answered, hung up, wrapped up with notes.
func (r *demoRig) answeredCall(notes string) *gt.Conversation {
	cv := r.demo.Genesys.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550101", Queue: gt.QueueSupport,
		Attributes: map[string]string{"AccountNumber": "CUST-1001"}})
	leg := cv.Alert(gt.AgentAlice)
	cv.Connect(leg)
	cv.Disconnect(leg)
	cv.End()
	cv.Wrapup(leg, gt.CodeResolved, notes)
	return cv
}

func (r *demoRig) eventually(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("timed out waiting for %s", what)
}

func TestDemoKnownCallerEndToEnd(t *testing.T) {
	r := startDemo(t)
	z := r.demo.Zendesk
	g := r.demo.Genesys
	cv := g.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550101", Queue: gt.QueueSupport,
		Attributes: map[string]string{"AccountNumber": "CUST-1001"}})
	leg := cv.Alert(gt.AgentAlice)

	// Jane's latest open ticket pops for Alice (Zendesk agent 201).
	r.eventually("the display call", func() bool { return len(z.Displays(zendesktest.DemoAgentAlice)) > 0 })
	d := z.Displays(zendesktest.DemoAgentAlice)[0]
	assert.Equal(t, "ticket", d.Kind)
	assert.Equal(t, int64(zendesktest.DemoTicketJaneOpen), d.ID)

	// The customer was searched by the E.164 phone, URL-encoded right
	// (a raw + in a query string is a space).
	var phoneSearch bool
	for _, req := range z.Requests() {
		if strings.HasPrefix(req.Route, "/search") || strings.HasPrefix(req.Route, "/users/search") {
			if strings.Contains(req.Query.Get("query"), `"+14155550101"`) {
				phoneSearch = true
			}
		}
	}
	assert.True(t, phoneSearch, "searched by +14155550101")

	cv.Connect(leg)
	time.Sleep(1100 * time.Millisecond) // a measurable duration
	cv.Disconnect(leg)
	cv.End()
	cv.Wrapup(leg, gt.CodeResolved, "Router firmware updated.")

	var (
		comment string
		files   []zendesktest.Attachment
	)
	r.eventually("the sync comment", func() bool {
		tk, ok := z.Ticket(zendesktest.DemoTicketJaneOpen)
		if !ok {
			return false
		}
		for _, c := range tk.Comments {
			if strings.Contains(c.Body, cv.ID) {
				comment, files = c.Body, c.Attachments
				return true
			}
		}
		return false
	})
	// The recording was copied from Genesys into Zendesk (the demo's
	// CTI_RECORDING_UPLOAD): attached to the comment, which links it, and
	// served by Zendesk without Genesys's OAuth.
	require.Len(t, files, 1, "the recording attached to the sync comment")
	assert.Equal(t, "recording-"+cv.RecordingID()+".mp3", files[0].FileName)
	assert.Equal(t, "audio/mpeg", files[0].ContentType)
	assert.Contains(t, comment, files[0].ContentURL, "the comment links the uploaded recording")
	assert.NotContains(t, comment, "/api/v2/conversations/"+cv.ID+"/recordings", "the comment links Zendesk's copy, not Genesys's API")
	resp, err := http.Get(files[0].ContentURL)
	require.NoError(t, err)
	audio, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, gt.RecordingBytes(cv.RecordingID()), audio, "Zendesk serves the recording Genesys recorded")
	for _, want := range []string{cv.ID, "0:00:0", "Support", "Alice Martin", "Resolved"} {
		assert.Contains(t, comment, want, "the end-of-conversation comment has %q", want)
	}
	assert.NotContains(t, comment, gt.CodeResolved, "wrap-up codes are shown by name")
	tk, _ := z.Ticket(zendesktest.DemoTicketJaneOpen)
	assert.Equal(t, "Resolved", tk.CustomFields[360000000002])
	assert.Contains(t, tk.Tags, "genesys")
}

// With Talk Partner Edition, the call record's voice comment plays the
// recording copied into Zendesk: Genesys first answers 202 (transcoding),
// the sync writes the call record at once and adds the recording when it
// is ready, attached to an internal note.
func TestDemoTalkCallRecordPlaysTheRecording(t *testing.T) {
	r := startDemoWith(t, func(s *Setup) { s.TalkAppID = 777 })
	z := r.demo.Zendesk
	cv := r.answeredCall("Router firmware updated.")

	var rec string
	r.eventually("the call record's recording", func() bool {
		for _, c := range z.Calls() {
			if u, _ := c.Fields["recording_url"].(string); u != "" {
				rec = u
				return true
			}
		}
		return false
	})
	require.Len(t, z.Calls(), 1, "one call record")
	resp, err := http.Get(rec)
	require.NoError(t, err)
	audio, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "audio/mpeg", resp.Header.Get("Content-Type"))
	assert.Equal(t, gt.RecordingBytes(cv.RecordingID()), audio, "the call record plays the recording Genesys recorded")

	id, err := strconv.ParseInt(fmt.Sprint(z.Calls()[0].Fields["ticket_id"]), 10, 64)
	require.NoError(t, err)
	tk, ok := z.Ticket(id)
	require.True(t, ok, "the call record's ticket %v", z.Calls()[0].Fields["ticket_id"])
	var notes int
	for _, c := range tk.Comments {
		for _, a := range c.Attachments {
			if a.ContentURL == rec {
				notes++
				assert.False(t, c.Public, "the recording is on an internal note")
			}
		}
	}
	assert.Equal(t, 1, notes, "the recording attached once")
	assert.Regexp(t, `/recordings/[^"]+" status=202(.|\n)*/recordings/[^"]+" status=200`, r.logs.String(),
		"Genesys answered 202 (transcoding), then the sync came back for the recording")
}

// Zendesk refuses the recording (413: too large): the sync is written
// without it (the comment keeps Genesys's address), and /metrics counts
// the notice.
func TestDemoRecordingRefusedStillSyncs(t *testing.T) {
	r := startDemo(t)
	z := r.demo.Zendesk
	z.InjectFault(zendesktest.Fault{Method: "POST", Route: "/uploads", Status: http.StatusRequestEntityTooLarge})
	cv := r.answeredCall("")

	var comment zendesktest.Comment
	r.eventually("the sync comment", func() bool {
		for _, tk := range z.Tickets() {
			for _, c := range tk.Comments {
				if strings.Contains(c.Body, cv.ID) {
					comment = c
					return true
				}
			}
		}
		return false
	})
	assert.Empty(t, comment.Attachments)
	assert.Contains(t, comment.Body, "/api/v2/conversations/"+cv.ID+"/recordings/"+cv.RecordingID(), "Genesys's address, as without uploads")
	resp, err := http.Get(r.base + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `ctikit_sync_notices_total{kind="recording"} 1`)
}

func TestDemoUnknownCallerCreatesUserAndTicket(t *testing.T) {
	r := startDemo(t)
	z := r.demo.Zendesk
	cv := r.demo.Genesys.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550177", Queue: gt.QueueSupport})
	cv.Alert(gt.AgentCarol)
	r.eventually("a pop for Carol", func() bool { return len(z.Displays(zendesktest.DemoAdminCarol)) > 0 })
	users := z.UsersWithPhone("+14155550177")
	require.Len(t, users, 1, "one user created, with the E.164 phone")
	assert.NotEmpty(t, users[0].Name, "the created user has a name")
	var created []zendesktest.Ticket
	for _, tk := range z.Tickets() {
		if tk.RequesterID == users[0].ID {
			created = append(created, tk)
		}
	}
	require.Len(t, created, 1)
	assert.NotEmpty(t, created[0].Description, "the created ticket has a description")
	assert.Contains(t, created[0].Subject, "+14155550177")
}

func TestDemoHealthzNeedsGenesysSocket(t *testing.T) {
	r := startDemo(t)
	resp, err := http.Get(r.base + "/healthz")
	require.NoError(t, err)
	var rep struct {
		Status string            `json:"status"`
		Parts  map[string]string `json:"parts"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	resp.Body.Close()
	assert.Equal(t, "ok", rep.Status)
	assert.Equal(t, map[string]string{"genesys": "ok", "zendesk": "ok"}, rep.Parts)
	m := r.get("/metrics")
	assert.Equal(t, 200, m.StatusCode)
}

func TestCLIErrorsNameWhatToFix(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rules, demoRules, 0o600))
	noEnv := func(string) (string, bool) { return "", false }

	var out, errOut bytes.Buffer
	code := cli(context.Background(), []string{"-config", rules}, &out, &errOut, noEnv)
	assert.Equal(t, 1, code)
	for _, want := range []string{"GENESYSCLOUD_OAUTHCLIENT_ID", "GENESYSCLOUD_OAUTHCLIENT_SECRET", "GENESYSCLOUD_REGION", "ZENDESK_URL", "ZENDESK_API_TOKEN"} {
		assert.Contains(t, errOut.String(), want)
	}

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("subscribe: {queues: [q]}\nrules:\n  - name: r\n    when: {media: [fax]}\n    identify: [phone]\n"), 0o600))
	errOut.Reset()
	code = cli(context.Background(), []string{"-config", bad}, &out, &errOut, noEnv)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), `line 4: rules[0].when.media[0]: "fax": unknown media`)

	secretEnv := func(k string) (string, bool) {
		v, ok := map[string]string{
			"GENESYSCLOUD_OAUTHCLIENT_ID": "id", "GENESYSCLOUD_OAUTHCLIENT_SECRET": "s3cr3t-genesys",
			"GENESYSCLOUD_REGION": "nowhere.invalid", "ZENDESK_URL": "https://acme.zendesk.com",
			"ZENDESK_EMAIL": "a@acme.com", "ZENDESK_API_TOKEN": "s3cr3t-zendesk", "CTI_TALK_APP_ID": "abc",
			"CTI_SYNC_BATCH_WAIT": "soon",
		}[k]
		return v, ok
	}
	errOut.Reset()
	code = cli(context.Background(), []string{"-config", rules}, &out, &errOut, secretEnv)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "CTI_TALK_APP_ID")
	assert.Contains(t, errOut.String(), `CTI_SYNC_BATCH_WAIT="soon"`)
	assert.NotContains(t, errOut.String(), "s3cr3t", "secrets never appear in errors")

	out.Reset()
	code = cli(context.Background(), []string{"-validate", rules}, &out, &errOut, noEnv)
	assert.Equal(t, 0, code)
	assert.Contains(t, out.String(), "OK: 5 rule(s)")
	assert.Contains(t, out.String(), "support-voice — applies to media voice or callback, queue 9e1c0f00-0000-4000-8000-00000000a001 or 9e1c0f00-0000-4000-8000-00000000a003, inbound")

	zip := filepath.Join(dir, "app.zip")
	code = cli(context.Background(), []string{"-package-app", zip, "-panel-url", "https://cti.example.com/panel/"}, &out, &errOut, noEnv)
	assert.Equal(t, 0, code, errOut.String())
	st, err := os.Stat(zip)
	require.NoError(t, err)
	assert.Positive(t, st.Size())
}

func TestSimulate(t *testing.T) {
	g := gt.NewServer(gt.WithSeed(gt.DemoSeed()))
	defer g.Close()
	cv := g.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550101", Queue: gt.QueueSupport})
	var frames [][]byte
	topic := fmt.Sprintf("v2.routing.queues.%s.conversations", gt.QueueSupport)
	leg := cv.Alert(gt.AgentAlice)
	frames = append(frames, cv.Frame(topic))
	cv.Connect(leg)
	frames = append(frames, cv.Frame(topic))
	cv.Disconnect(leg)
	cv.End()
	frames = append(frames, cv.Frame(topic))
	cv.Wrapup(leg, gt.CodeResolved, "fixed")
	frames = append(frames, cv.Frame(topic))
	path := filepath.Join(t.TempDir(), "call.jsonl")
	require.NoError(t, os.WriteFile(path, bytes.Join(frames, []byte("\n")), 0o600))

	var out, errOut bytes.Buffer
	code := cli(context.Background(), []string{"-simulate", path}, &out, &errOut, func(string) (string, bool) { return "", false })
	require.Equal(t, 0, code, errOut.String())
	s := out.String()
	assert.Contains(t, s, "identify by phone \"+14155550101\": 1 found")
	assert.Contains(t, s, "would pop ticket/401")
	assert.Contains(t, s, "sync "+cv.ID)
	assert.Contains(t, s, "field 360000000001 = 0:00:")
}

// An operator lists the dead letters and puts them back in the outbox once
// the cause is fixed; the requeued job keeps its delivery count.
func TestCLIDeadLettersAndRequeue(t *testing.T) {
	dir := t.TempDir()
	env := func(k string) (string, bool) {
		if k == "CTI_STATE_DIR" {
			return dir, true
		}
		return "", false
	}
	var out, errOut bytes.Buffer
	code := cli(context.Background(), []string{"-dead-letters"}, &out, &errOut, env)
	assert.Equal(t, 1, code, "no state yet")
	assert.Contains(t, errOut.String(), "CTI_STATE_DIR")

	st, err := syncmap.OpenStore(dir)
	require.NoError(t, err)
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for _, id := range []string{"c1", "c2"} {
		require.NoError(t, st.Bury(context.Background(), &cti.SyncJob{Key: cti.JobKey(id, "l1"), ConversationID: id, LegID: "l1",
			Rule: "support-voice", EnqueuedAt: t0, Tries: 2, Attempts: 8}, "zendesk update ticket: 403 Forbidden"))
	}
	require.NoError(t, st.Close())

	out.Reset()
	errOut.Reset()
	code = cli(context.Background(), []string{"-dead-letters"}, &out, &errOut, env)
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, out.String(), "c1/l1\trule support-voice\tattempts 8")
	assert.Contains(t, out.String(), "403 Forbidden")
	assert.Contains(t, out.String(), "2 dead letter(s)")

	out.Reset()
	code = cli(context.Background(), []string{"-requeue", "c1/l1,nope/l1"}, &out, &errOut, env)
	assert.Equal(t, 1, code, "an unknown key is an error")
	assert.Contains(t, out.String(), "requeued 1 of 2")
	assert.Contains(t, errOut.String(), "nope/l1")

	out.Reset()
	code = cli(context.Background(), []string{"-requeue", "all"}, &out, &errOut, env)
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, out.String(), "requeued 1 of 1")

	st, err = syncmap.OpenStore(dir)
	require.NoError(t, err)
	defer st.Close()
	due, _, err := st.Due(context.Background(), time.Now(), 10)
	require.NoError(t, err)
	require.Len(t, due, 2)
	for _, j := range due {
		assert.Zero(t, j.Attempts, j.Key)
		assert.Equal(t, 2, j.Tries, "%s: the delivery count is kept, so the sink checks what was written", j.Key)
	}
	dead, err := st.DeadLetters(context.Background())
	require.NoError(t, err)
	assert.Empty(t, dead)
}

// zafKey writes a Zendesk app public key (PEM) for CTI_ZAF_PUBLIC_KEY and
// returns the private key that signs the app's tokens.
func zafKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "zaf.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	return key, path
}

// zafToken is the JWT Zendesk POSTs to a signed-URL app.
func zafToken(t *testing.T, key *rsa.PrivateKey, iss, aud string) string {
	t.Helper()
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": iss, "aud": aud, "sub": "101", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(),
	}).SignedString(key)
	require.NoError(t, err)
	return s
}

const zafAudience = "https://acme.zendesk.com/api/v2/apps/installations/1.json"

// Zendesk signs the panel's token with the account host as issuer,
// whichever form ZENDESK_URL takes.
func TestZAFIssuerFromEveryZendeskURLForm(t *testing.T) {
	key, pemPath := zafKey(t)
	good := zafToken(t, key, "acme.zendesk.com", zafAudience)
	other := zafToken(t, key, "evil.zendesk.com", zafAudience)
	for _, zurl := range []string{"acme", "Acme", "acme.zendesk.com", "https://acme.zendesk.com", "https://acme.zendesk.com/",
		"https://acme.zendesk.com/api/v2", "https://ACME.Zendesk.com/api/v2/", " https://acme.zendesk.com\n"} {
		env := map[string]string{"ZENDESK_URL": zurl, "ZENDESK_EMAIL": "a@acme.com", "ZENDESK_API_TOKEN": "tok",
			"CTI_ZAF_PUBLIC_KEY": pemPath, "CTI_ZAF_AUDIENCE": zafAudience}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		zc, err := zendesk.ConfigFromLookup(lookup)
		require.NoError(t, err, "ZENDESK_URL=%q", zurl)
		z, err := zafFromEnv(lookup, zc.URL)
		require.NoError(t, err, "ZENDESK_URL=%q", zurl)
		assert.Equal(t, "acme.zendesk.com", z.Issuer, "ZENDESK_URL=%q", zurl)
		_, err = z.Verify(good)
		assert.NoError(t, err, "ZENDESK_URL=%q: Zendesk's token is accepted", zurl)
		_, err = z.Verify(other)
		assert.ErrorIs(t, err, panel.ErrUnauthorized, "ZENDESK_URL=%q: another account's token is refused", zurl)
	}
}

// CTI_ZAF_AUDIENCE is comma-separated: spaces around the commas, empty
// entries and a trailing newline are ignored.
func TestZAFAudienceListIsTrimmed(t *testing.T) {
	key, pemPath := zafKey(t)
	const second = "https://acme.zendesk.com/api/v2/apps/installations/2.json"
	zaf := func(audience string) (*panel.ZAF, error) {
		env := map[string]string{"CTI_ZAF_PUBLIC_KEY": pemPath, "CTI_ZAF_AUDIENCE": audience}
		return zafFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "acme")
	}
	z, err := zaf(" " + zafAudience + " ,, " + second + ",\n")
	require.NoError(t, err)
	assert.Equal(t, []string{zafAudience, second}, z.Audiences)
	for _, aud := range []string{zafAudience, second} {
		_, err = z.Verify(zafToken(t, key, "acme.zendesk.com", aud))
		assert.NoError(t, err, aud)
	}
	_, err = z.Verify(zafToken(t, key, "acme.zendesk.com", ""))
	assert.ErrorIs(t, err, panel.ErrUnauthorized, "an empty entry is no audience")

	_, err = zaf(" , ")
	require.Error(t, err, "a key without an audience")
	assert.Contains(t, err.Error(), "CTI_ZAF_AUDIENCE")
}

// An agent's open panel (its live stream) neither holds the shutdown up
// until the HTTP drain timeout nor outlives Run.
func TestShutdownEndsOpenPanelStreams(t *testing.T) {
	d, err := StartDemo(nil)
	require.NoError(t, err)
	defer d.Close()
	app, err := Build(d.Setup("127.0.0.1:0", t.TempDir(), nil))
	require.NoError(t, err)
	addr, err := app.Listen()
	require.NoError(t, err)
	app.Panel.AddAgent(demoAgents[0].genesys, demoAgents[0].zendesk)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()

	resp, err := http.Get("http://" + addr.String() + "/panel/api/stream?agent=" + itoa(demoAgents[0].zendesk.ID))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "event: snapshot\n", line)
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, br)
		ended <- err
	}()

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
		assert.Less(t, time.Since(start), 4*time.Second, "Run waited for the open stream")
	case <-time.After(4 * time.Second):
		t.Error("Run is still shutting down after 4 s: the open panel stream holds it up")
		<-done
	}
	select {
	case <-ended:
	case <-time.After(4 * time.Second):
		t.Error("the panel stream is still open after Run returned")
		resp.Body.Close()
		<-ended
	}
}

// The server keeps the panel's session key in CTI_STATE_DIR: after a
// restart, the sessions of the panels agents have open still work.
func TestPanelSessionsSurviveRestart(t *testing.T) {
	key, _ := zafKey(t)
	d, err := StartDemo(nil)
	require.NoError(t, err)
	defer d.Close()
	state := t.TempDir()
	start := func(dir string) *panel.ZAF {
		t.Helper()
		z, err := panel.NewZAF(&key.PublicKey, []string{zafAudience}, "acme.zendesk.com")
		require.NoError(t, err)
		s := d.Setup("127.0.0.1:0", dir, nil)
		s.ZAF = z
		app, err := Build(s)
		require.NoError(t, err)
		for _, c := range app.closers { // stop it
			require.NoError(t, c())
		}
		return z
	}
	session := start(state).Session(101)
	authenticate := func(z *panel.ZAF) error {
		r := httptest.NewRequest("GET", "/panel/api/items", nil)
		r.Header.Set("Authorization", "Bearer "+session)
		_, err := z.Authenticate(r)
		return err
	}
	assert.NoError(t, authenticate(start(state)), "the restarted server accepts the session")
	assert.ErrorIs(t, authenticate(start(t.TempDir())), panel.ErrUnauthorized, "a server with other state does not")

	require.NoError(t, os.WriteFile(filepath.Join(state, panel.SessionKeyFile), []byte("short"), 0o600))
	z, err := panel.NewZAF(&key.PublicKey, []string{zafAudience}, "acme.zendesk.com")
	require.NoError(t, err)
	s := d.Setup("127.0.0.1:0", state, nil)
	s.ZAF = z
	_, err = Build(s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CTI_STATE_DIR")
	assert.Contains(t, err.Error(), filepath.Join(state, panel.SessionKeyFile))
}
