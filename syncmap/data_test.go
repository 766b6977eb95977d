package syncmap_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
	"github.com/cxplay/ctikit/syncmap"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fixture is a realistic finished conversation of a media kind with every
// data point that kind has.
func fixture(kind string) *cti.SyncJob {
	var b *ctitest.Builder
	switch kind {
	case "voice", "callback", "email", "chat":
		b = ctitest.NewConversation("conv-"+kind, cti.Media(kind))
	default:
		b = ctitest.NewMessage("conv-"+kind, cti.Channel(kind))
	}
	b.Queue("q-support", "Support").Attr("AccountNumber", "AC-1001").Attr("Tier", "gold")
	switch kind {
	case "voice", "callback", "sms", "whatsapp":
		b.Phone("+14155550100")
	case "email":
		b.Customer(cti.Customer{Address: "ana@example.com", Email: "ana@example.com", Name: "Ana Lima"})
	case "chat":
		b.Customer(cti.Customer{Address: "Ana Lima", Name: "Ana Lima", Email: "ana@example.com"})
	default:
		b.Customer(cti.Customer{Address: "ana.lima." + kind, Handle: "ana.lima." + kind, Name: "Ana Lima"})
	}
	if kind == "callback" {
		b.Direction(cti.Outbound).Campaign("camp-1", "Renewals")
	}
	b.Alert("l1", "u1")
	b.Connect("l1")
	b.Transfer("l1", "l2", "u2", cti.Ref{ID: "q-billing", Name: "Billing"})
	b.Connect("l2")
	b.Hangup("l2")
	b.Wrapup("l1", "wc-transfer", "Sent to billing")
	c := b.Wrapup("l2", "wc-refund", "Refund of $20 approved;\nfollow up Monday")
	c.Agents[1].Wrapup.Name, c.Agents[1].Wrapup.Category = "Refund", "Billing"
	c.Agents[1].Name = "Jane Doe"
	c.Transfers[0].ToUser.Name = "Jane Doe"
	c.Links.InteractionURL = "https://apps.mypurecloud.com/directory/#/engage/admin/interactions/conv-" + kind
	switch kind {
	case "voice", "callback":
		c.Links.RecordingURL = "https://apps.mypurecloud.com/recordings/conv-" + kind
		c.Content.Transcript = "Agent: Billing, Jane speaking.\nCustomer: I was charged twice."
		c.Content.Summary = "Double charge; refund approved."
	case "email":
		c.Content = cti.Content{EmailSubject: "Charged twice", EmailBody: "<p>I was charged <b>twice</b>.</p>", EmailText: "I was charged twice.",
			ReplySubject: "Re: Charged twice", ReplyBody: "<p>Refunded.</p>", ReplyText: "Refunded.", Summary: "Refund by email."}
	default:
		c.Content.Transcript = "Customer: I was charged twice.\nAgent: Refunded."
		c.Content.Summary = "Double charge; refunded in chat."
	}
	return &cti.SyncJob{Key: cti.JobKey(c.ID, "l2"), ConversationID: c.ID, LegID: "l2", Rule: "r", Conversation: c,
		Agent: &cti.Agent{ID: agentID, Name: "Jane Doe"}, EnqueuedAt: ctitest.Start}
}

// expr is how a template names a catalog point.
func expr(p syncmap.Point) string {
	switch p.Name {
	case "Attr", "Value":
		return `{{.` + p.Name + ` "AccountNumber"}}`
	case "AttrOr":
		return `{{.AttrOr "Missing" "n/a"}}`
	}
	return "{{." + p.Name + "}}"
}

func TestCatalogNamesAreData(t *testing.T) {
	t.Parallel()
	dt := reflect.TypeFor[syncmap.Data]()
	pt := reflect.TypeFor[*syncmap.Data]()
	for _, p := range syncmap.Catalog {
		_, field := dt.FieldByName(p.Name)
		_, method := pt.MethodByName(p.Name)
		if !field && !method {
			t.Errorf("catalog point %s is neither a field nor a method of Data", p.Name)
		}
		if p.Label == "" || p.Description == "" || p.Format == "" || p.Type == "" {
			t.Errorf("catalog point %s lacks a label, description, format or type", p.Name)
		}
		for _, m := range p.Media {
			if !slices.Contains(cti.Kinds, m) {
				t.Errorf("catalog point %s: unknown media %q", p.Name, m)
			}
		}
	}
	for i := range dt.NumField() {
		if _, ok := syncmap.Lookup(dt.Field(i).Name); !ok {
			t.Errorf("Data.%s is not in the catalog", dt.Field(i).Name)
		}
	}
	if got := syncmap.Names(); len(got) != len(syncmap.Catalog) || got[0] != "ConversationID" {
		t.Errorf("Names() = %v", got)
	}
}

// Every data point renders for every media, never "<nil>" or "<no
// value>"; points that do not apply to a media, and every point of an
// empty job, render empty.
func TestEveryPointRendersForEveryMedia(t *testing.T) {
	t.Parallel()
	bad := func(s string) bool { return strings.Contains(s, "<nil>") || strings.Contains(s, "<no value>") }
	for _, kind := range cti.Kinds {
		d := syncmap.NewData(fixture(kind), syncmap.Format{})
		for _, p := range syncmap.Catalog {
			tpl, err := syncmap.Parse(p.Name, expr(p))
			if err != nil {
				t.Fatalf("%s: %v", p.Name, err)
			}
			got, err := tpl.Render(d, syncmap.Format{})
			if err != nil || bad(got) {
				t.Errorf("%s/%s = %q, %v", kind, p.Name, got, err)
			}
			if !p.Applies(kind) && got != "" {
				t.Errorf("%s/%s = %q, want empty: it does not apply to %s", kind, p.Name, got, kind)
			}
			if p.Applies(kind) && got == "" && !slices.Contains([]string{"CampaignName", "CampaignID", "CustomerEmail", "CustomerAddress", "CustomerHandle", "CustomerName", "Values", "Channel"}, p.Name) {
				t.Errorf("%s/%s renders empty in the full fixture", kind, p.Name)
			}
		}
	}
	for _, job := range []*cti.SyncJob{{ConversationID: "x"}, {ConversationID: "x", Conversation: &cti.Conversation{ID: "x"}}} {
		d := syncmap.NewData(job, syncmap.Format{})
		for _, p := range syncmap.Catalog {
			tpl, _ := syncmap.Parse(p.Name, expr(p))
			got, err := tpl.Render(d, syncmap.Format{})
			want := ""
			switch p.Name {
			case "ConversationID":
				want = "x"
			case "AttrOr":
				want = "n/a"
			}
			if err != nil || got != want {
				t.Errorf("empty job: %s = %q, %v; want %q", p.Name, got, err, want)
			}
		}
	}
}

func TestDataValues(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	f := syncmap.Format{Location: paris, Layout: "02/01/2006 15:04"}
	d := syncmap.NewData(fixture("voice"), f)
	checks := map[string]string{
		"{{.StartTime}}":                    "24/11/2026 10:00",
		`{{time .Start "15:04:05"}}`:        "10:00:00",
		"{{.Start}}":                        "2026-11-24T09:00:00Z",
		"{{.CallDuration}}":                 "0:00:15", // customer connected 09:00:05, left 09:00:20
		"{{.TalkTime}}":                     "0:00:05",
		"{{duration .Duration}}":            "0:00:15",
		"{{.Duration.Seconds}}":             "15",
		"{{.AgentName}}":                    "Jane Doe",
		"{{.QueueName}} {{.QueueID}}":       "Billing q-billing",
		"{{.TransferredTo}}":                "Billing / Jane Doe",
		"{{.TransferType}}":                 "blind",
		"{{.WrapupCode}}|{{.WrapupName}}":   "wc-refund|Refund",
		"{{.WrapupCategory}}":               "Billing",
		"{{.Attributes}}":                   "AccountNumber=AC-1001; Tier=gold",
		"{{.Attributes.Tier}}":              "gold",
		`{{default "n/a" .CampaignName}}`:   "n/a",
		`{{truncate 8 .WrapupNotes}}`:       "Refund …",
		`{{join ", " .Attributes}}`:         "AccountNumber=AC-1001; Tier=gold",
		"{{.Direction}} {{.Kind}}":          "inbound voice",
		"{{.CallSummary}}|{{.ChatSummary}}": "Double charge; refund approved.|",
	}
	for text, want := range checks {
		tpl, err := syncmap.Parse("t", text)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		got, err := tpl.Render(d, f)
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", text, got, err, want)
		}
	}
	// The first agent (who transferred) sees where it went.
	j := fixture("voice")
	j.LegID = "l1"
	if d := syncmap.NewData(j, f); d.TransferredTo != "Billing / Jane Doe" || d.TransferType != "blind" {
		t.Errorf("TransferredTo, TransferType for the transferring leg = %q, %q", d.TransferredTo, d.TransferType)
	}
	// An attended transfer, then a blind one: each leg sees its own.
	j = fixture("voice")
	c := j.Conversation
	c.Transfers[0].Kind = cti.TransferConsult
	c.Agents[0].DisconnectType = "transfer.consult"
	c.Transfers = append(c.Transfers, cti.Transfer{At: c.Transfers[0].At.Add(time.Second), FromUser: cti.Ref{ID: c.Agents[1].UserID},
		ToQueue: cti.Ref{ID: "q-sales", Name: "Sales"}, Kind: cti.TransferBlind})
	c.Agents[1].DisconnectType = cti.DisconnectTransfer
	j.LegID = "l1"
	if d := syncmap.NewData(j, f); d.TransferredTo != "Billing / Jane Doe" || d.TransferType != "consult" {
		t.Errorf("consulting leg: %q, %q", d.TransferredTo, d.TransferType)
	}
	j.LegID = "l2"
	if d := syncmap.NewData(j, f); d.TransferredTo != "Sales" || d.TransferType != "blind" {
		t.Errorf("second leg: %q, %q", d.TransferredTo, d.TransferType)
	}
	c.Agents[1].DisconnectType = "peer" // a leg that did not transfer sees every transfer
	if d := syncmap.NewData(j, f); d.TransferredTo != "Billing / Jane Doe, Sales" || d.TransferType != "consult, blind" {
		t.Errorf("every transfer: %q, %q", d.TransferredTo, d.TransferType)
	}
	// A destination without a name (an external number) keeps the lists
	// in line.
	c.Transfers[0].ToQueue, c.Transfers[0].ToUser = cti.Ref{}, cti.Ref{}
	if d := syncmap.NewData(j, f); d.TransferredTo != "unknown, Sales" || d.TransferType != "consult, blind" {
		t.Errorf("unnamed destination: %q, %q", d.TransferredTo, d.TransferType)
	}
}

// An agent who gets the conversation back has two legs: each reports the
// transfer that ended it (within the leg's time), not the agent's last.
func TestDataTransferOfEachLegOfOneAgent(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	leg := func(id, user string, from, to int) cti.AgentLeg {
		return cti.AgentLeg{ID: id, UserID: user, State: cti.LegDisconnected, DisconnectType: cti.DisconnectTransfer,
			AlertTime: at(from), ConnectedTime: at(from).Add(5 * time.Second), EndTime: at(to)}
	}
	c := &cti.Conversation{ID: "c1", Media: cti.MediaVoice, StartTime: t0, ConnectedTime: at(0).Add(5 * time.Second), EndTime: at(10),
		Agents: []cti.AgentLeg{leg("l1", "uA", 0, 1), leg("l2", "uB", 2, 3), leg("l3", "uA", 4, 5)},
		Transfers: []cti.Transfer{ // A to Sales, B back to A, A to Billing
			{At: at(1), FromUser: cti.Ref{ID: "uA"}, ToQueue: cti.Ref{ID: "qs", Name: "Sales"}, Kind: cti.TransferBlind},
			{At: at(3), FromUser: cti.Ref{ID: "uB"}, ToUser: cti.Ref{ID: "uA", Name: "Alice"}, Kind: cti.TransferConsult},
			{At: at(5), FromUser: cti.Ref{ID: "uA"}, ToQueue: cti.Ref{ID: "qb", Name: "Billing"}, Kind: cti.TransferConsult},
		}}
	for _, tc := range []struct{ leg, to, kind string }{
		{"l1", "Sales", "blind"},
		{"l2", "Alice", "consult"},
		{"l3", "Billing", "consult"},
	} {
		d := syncmap.NewData(&cti.SyncJob{Key: "c1/" + tc.leg, ConversationID: "c1", LegID: tc.leg, Conversation: c}, syncmap.Format{})
		if d.TransferredTo != tc.to || d.TransferType != tc.kind {
			t.Errorf("leg %s: TransferredTo, TransferType = %q, %q; want %q, %q", tc.leg, d.TransferredTo, d.TransferType, tc.to, tc.kind)
		}
	}
	// Only the connection time known: the window starts there.
	c.Agents[2].AlertTime = time.Time{}
	if d := syncmap.NewData(&cti.SyncJob{Key: "c1/l3", ConversationID: "c1", LegID: "l3", Conversation: c}, syncmap.Format{}); d.TransferredTo != "Billing" {
		t.Errorf("leg l3 without an alert time: TransferredTo = %q, want Billing", d.TransferredTo)
	}
}

func TestTemplateErrors(t *testing.T) {
	t.Parallel()
	if err := syncmap.Check("{{.CallDurration}}"); err == nil || !strings.Contains(err.Error(), "unknown data point .CallDurration") {
		t.Errorf("Check(typo) = %v", err)
	}
	if err := syncmap.Check("{{.CallDuration"); err == nil {
		t.Error("Check(unclosed) = nil")
	}
	tpl, err := syncmap.Parse("t", `{{duration (.Attr "Secs")}}`)
	if err != nil {
		t.Fatal(err)
	}
	d := syncmap.NewData(fixture("voice"), syncmap.Format{})
	d.Attributes["Secs"] = "abc"
	if out, err := tpl.Render(d, syncmap.Format{}); err == nil || out != "" {
		t.Errorf("Render(bad duration) = %q, %v; want an error and no partial output", out, err)
	}
	if out, err := tpl.Render(nil, syncmap.Format{}); err != nil || out != "" {
		t.Errorf("Render(nil data) = %q, %v", out, err)
	}
}

// The default comment of every media, from its realistic fixture, is a
// golden file: testdata/comment_<kind>.golden (go test -update rewrites).
func TestDefaultCommentGolden(t *testing.T) {
	t.Parallel()
	rules := &cti.Rules{Rules: []cti.Rule{{Name: "r", Sync: cti.SyncSpec{Comment: cti.CommentInternal,
		Fields: map[string]string{fieldDuration: "{{.CallDuration}}", fieldNotes: "{{.WrapupNotes}}"}}}}}
	m, err := syncmap.NewMapper(rules, syncmap.WithFormat(syncmap.Format{Layout: "2006-01-02 15:04:05 MST"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range cti.Kinds {
		up, err := m.Map(context.Background(), fixture(kind))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		path := filepath.Join("testdata", "comment_"+kind+".golden")
		if *update {
			if err := os.WriteFile(path, []byte(up.Comment+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if up.Comment+"\n" != string(want) {
			t.Errorf("%s comment differs from %s:\n%s", kind, path, up.Comment)
		}
		if strings.Contains(up.Comment, "<nil>") || strings.Contains(up.Comment, "<no value>") {
			t.Errorf("%s comment has a nil: %s", kind, up.Comment)
		}
		if up.Fields[fieldDuration] != "0:00:15" || up.Fields[fieldNotes] == nil {
			t.Errorf("%s fields = %v", kind, up.Fields)
		}
	}
}

func TestMapper(t *testing.T) {
	t.Parallel()
	rules := &cti.Rules{Rules: []cti.Rule{
		{Name: "custom", Sync: cti.SyncSpec{Comment: cti.CommentPublic, Tags: []string{"Genesys", "VIP Customer", "genesys", " "},
			Template: `{{.Value "Segment"}} call with {{.PhoneNumber}} ({{.CallDuration}})`,
			Fields: map[string]string{
				fieldDuration: "{{.CallDuration}}",
				fieldWrapup:   "{{.CampaignName}}", // empty: left out
				fieldNotes:    `{{duration (.Attr "Secs")}}`,
			}}},
		{Name: "silent", Sync: cti.SyncSpec{Comment: cti.CommentNone}},
	}}
	m, err := syncmap.NewMapper(rules, syncmap.WithComputed("Segment", `{{if eq (.Attr "Tier") "gold"}}VIP{{else}}Standard{{end}}`))
	if err != nil {
		t.Fatal(err)
	}
	job := fixture("voice")
	job.Rule = "custom"
	job.Conversation.Attributes["Secs"] = "not a number"
	up, err := m.Map(context.Background(), job)
	var rerr *syncmap.RenderError
	if !errors.As(err, &rerr) || rerr.Fields[fieldNotes] == nil {
		t.Fatalf("Map = %v, want a *RenderError for field %s", err, fieldNotes)
	}
	if up.Comment != "VIP call with +14155550100 (0:00:15)" || !up.Public {
		t.Errorf("comment = %q (public %v)", up.Comment, up.Public)
	}
	if len(up.Fields) != 1 || up.Fields[fieldDuration] != "0:00:15" {
		t.Errorf("fields = %v, want only the duration (empty and failing ones left out)", up.Fields)
	}
	if want := []string{"genesys", "vip_customer", syncmap.MarkerTag(job.Key)}; !slices.Equal(up.Tags, want) {
		t.Errorf("tags = %v, want %v", up.Tags, want)
	}
	job.Rule = "silent"
	if up, err := m.Map(context.Background(), job); err != nil || up.Comment != "" || len(up.Tags) != 1 {
		t.Errorf("comment none: %+v, %v", up, err)
	}
	job.Rule = "unknown"
	if _, err := m.Map(context.Background(), job); !errors.Is(err, cti.ErrInvalid) {
		t.Errorf("unknown rule: %v", err)
	}
	// A failing sync.template falls back to the default comment.
	bad := &cti.Rules{Rules: []cti.Rule{{Name: "r", Sync: cti.SyncSpec{Template: `{{duration (.Attr "Secs")}}`}}}}
	m2, err := syncmap.NewMapper(bad)
	if err != nil {
		t.Fatal(err)
	}
	job.Rule = "r"
	up, err = m2.Map(context.Background(), job)
	if !errors.As(err, &rerr) || rerr.Comment == nil || !strings.HasPrefix(up.Comment, "Genesys Cloud: inbound call") {
		t.Errorf("failing template: %q, %v; want the default comment and a RenderError", up.Comment, err)
	}
	// Load-time errors name the rule and field.
	_, err = syncmap.NewMapper(&cti.Rules{Rules: []cti.Rule{{Name: "r", Sync: cti.SyncSpec{
		Fields: map[string]string{"abc": "x", fieldDuration: "{{.Nope}}"}}}}})
	if err == nil || !strings.Contains(err.Error(), "rules[0].sync.fields.abc") || !strings.Contains(err.Error(), "unknown data point .Nope") {
		t.Errorf("NewMapper(bad) = %v", err)
	}
}

func TestTruncateBytes(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("é", 1000) // 2000 bytes
	got, cut := syncmap.TruncateBytes(s, 500)
	if !cut || len(got) > 500 || !strings.HasSuffix(got, "more characters not shown]") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("TruncateBytes = %d bytes %q…, cut %v", len(got), got[:10], cut)
	}
	if got, cut := syncmap.TruncateBytes("short", 500); got != "short" || cut {
		t.Fatalf("TruncateBytes(short) = %q, %v", got, cut)
	}
	if syncmap.MarkerTag("c/l") != syncmap.MarkerTag("c/l") || syncmap.MarkerTag("c/l") == syncmap.MarkerTag("c/l2") || len(syncmap.MarkerTag("x")) != 23 {
		t.Fatal("MarkerTag is not a stable per-key tag")
	}
}

// TestDurationWholeSeconds: Genesys times carry milliseconds; a Zendesk
// integer field takes {{.Duration.WholeSeconds}}, not Seconds' fraction.
func TestDurationWholeSeconds(t *testing.T) {
	d := &syncmap.Data{Duration: syncmap.Duration{Duration: 245317 * time.Millisecond}, Talk: syncmap.Duration{Duration: 1500 * time.Millisecond}}
	tm, err := syncmap.ParseFormat("f", "{{.Duration.WholeSeconds}} {{.Talk.WholeSeconds}} {{.Duration.Seconds}}", syncmap.Format{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tm.Render(d, syncmap.Format{})
	if err != nil || out != "245 2 245.317" {
		t.Errorf("Render = %q, %v; want \"245 2 245.317\"", out, err)
	}
}
