package syncmap_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
)

// FuzzTemplate parses arbitrary sync templates and renders the ones that
// parse over a conversation with arbitrary (and huge) attributes: a bad
// template is an error at parse time or at render time, never a panic or
// a hang.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"{{.CallDuration}}", "{{.WrapupName}} {{.Attributes}}", `{{.Attr "Account"}}`, `{{.AttrOr "X" "none"}}`,
		`{{default "Email" .EmailSubject}}`, `{{truncate 10 .Transcript}}`, `{{join ", " .Participants}}`,
		`{{time .Start "2006-01-02"}}`, `{{duration .Talk}}`, `{{duration "12.5"}}`, `{{upper .QueueName | lower | trim}}`,
		`{{range $k, $v := .Attributes}}{{$k}}={{$v}};{{end}}`, `{{if .Transferred}}x{{else}}y{{end}}`,
		`{{template "x"}}`, `{{define "x"}}{{template "x"}}{{end}}{{template "x"}}`, `{{range 3}}.{{end}}`,
		`{{.Nope}}`, `{{call .Attr}}`, `{{index .Attributes "a"}}`, `{{slice .PhoneNumber 1 2}}`, `{{printf "%v" .}}`,
		`{{len .Attributes}}`, `{{.Attributes.a}}`, `{{truncate -1 .PhoneNumber}}`,
	} {
		f.Add(s, "Account", "A-1")
	}
	f.Add("{{.Attributes}}", "huge", strings.Repeat("x", 1<<16))
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.UTC
	}
	f.Fuzz(func(t *testing.T, text, key, value string) {
		tpl, err := syncmap.Parse("fuzz", text)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		c := &cti.Conversation{ID: "conv-1", Media: cti.MediaVoice, Direction: cti.Inbound, StartTime: now, EndTime: now.Add(time.Minute),
			Attributes: map[string]string{key: value, "Account": value},
			Agents:     []cti.AgentLeg{{ID: "leg-1", UserID: "u", Name: value}}}
		d := syncmap.NewData(&cti.SyncJob{Key: "conv-1/leg-1", ConversationID: "conv-1", LegID: "leg-1", Conversation: c}, syncmap.Format{})
		if _, err := tpl.Render(d, syncmap.Format{}); err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
		if _, err := tpl.Render(d, syncmap.Format{Location: paris, Layout: time.Kitchen}); err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

// Templates that would hang or exhaust memory are rejected at parse time
// (range over a number) or stopped at render time (output past
// MaxRender), with an error that says why.
func TestTemplateRunaway(t *testing.T) {
	for _, s := range []string{
		`{{range 1000000000000}}{{end}}`,
		`{{range $i, $e := 1000000000000}}{{end}}`,
		`{{$n := 1000000000000}}{{range $n}}{{end}}`,
		`{{with $n := 1000000000000}}{{range $n}}x{{end}}{{end}}`,
		`{{range (1000000000000)}}{{end}}`,
		`{{define "x"}}{{range .}}{{end}}{{end}}{{template "x" 99999999999}}`,
		`{{with 99999999999}}{{range .}}{{end}}{{end}}`,
	} {
		start := time.Now()
		_, err := syncmap.Parse("runaway", s)
		if err == nil || !strings.Contains(err.Error(), "a number is not supported") {
			t.Errorf("Parse(%s) = %v, want the number error", s, err)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("Parse(%s) took %v", s, el)
		}
	}
	// Output: a huge attribute rendered many times.
	tpl, err := syncmap.Parse("big", `{{range .Attributes}}{{.}}{{.}}{{.}}{{.}}{{.}}{{.}}{{.}}{{.}}{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 1<<20)
	c := &cti.Conversation{ID: "c", Attributes: map[string]string{"a": big}}
	_, err = tpl.Render(syncmap.NewData(&cti.SyncJob{ConversationID: "c", Conversation: c}, syncmap.Format{}), syncmap.Format{})
	if err == nil || !strings.Contains(err.Error(), "renders more than") {
		t.Errorf("Render = %v, want the size error", err)
	}
	// Ranges over data and small numbers elsewhere still work.
	for _, s := range []string{`{{range .Attributes}}{{.}}{{end}}`, `{{truncate 60000 .Transcript}}`, `{{range $k, $v := .Attributes}}{{truncate 20 $v}}{{end}}`} {
		if _, err := syncmap.Parse("ok", s); err != nil {
			t.Errorf("Parse(%s) = %v", s, err)
		}
	}
}
