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
		`{{range .Start.Unix}}{{end}}`, `{{with .End.UnixNano}}{{range .}}{{end}}{{end}}`, `{{with .Attributes}}{{range .}}{{.}}{{end}}{{end}}`,
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

// A range may only go over a list or a map: a number that a data point's
// method or field gives (a Unix time counts for ever, with no output to
// stop it), through a variable, with or a template call, is refused at
// load time, naming the range and what to write instead; a value of a type
// not known there is refused too. Ranges over the list and map data points
// still work. Each check runs under a deadline, so a hang fails the test
// instead of the suite.
func TestTemplateRangeOnlyOverListsAndMaps(t *testing.T) {
	t.Parallel()
	parse := func(text string) (*syncmap.Template, error, bool) {
		type result struct {
			tpl *syncmap.Template
			err error
		}
		done := make(chan result, 1)
		go func() {
			tpl, err := syncmap.Parse("check", text)
			done <- result{tpl, err}
		}()
		select {
		case r := <-done:
			return r.tpl, r.err, true
		case <-time.After(5 * time.Second):
			return nil, nil, false
		}
	}
	for _, tc := range []struct{ text, want string }{
		{`{{range .Start.Unix}}{{end}}`, "{{range .Start.Unix}}: range over a number"},
		{`{{range .Duration.Nanoseconds}}{{end}}`, "{{range .Duration.Nanoseconds}}: range over a number"},
		{`{{with .End.UnixNano}}{{range .}}{{end}}{{end}}`, "{{range .}}: range over a number"},
		{`{{range .Duration.Duration}}{{end}}`, "range over a number"},
		{`{{range .Start.Sub .End.Time}}{{end}}`, "range over a number"},
		{`{{range .Talk.Milliseconds | printf "%d" | len}}{{end}}`, "range over a number"},
		{`{{$n := .Connect.UnixMicro}}{{range $n}}{{end}}`, "range over a number"},
		{`{{$x := .Attributes}}{{range .Attributes}}{{range $x}}{{end}}{{$x = $.Start.UnixMilli}}{{end}}`, "{{range $x}}: range over a number"},
		{`{{define "x"}}{{range .}}{{end}}{{end}}{{template "x" .End.Unix}}`, "{{range .}}: range over a number"},
		{"\n{{range (.Start.Unix)}}{{end}}", "line 2"},
		{`{{range call .Attr}}{{end}}`, "whose type is not known"},
		{`{{range .Transcript}}{{end}}`, "range over a string is not supported"},
	} {
		_, err, ok := parse(tc.text)
		switch {
		case !ok:
			t.Errorf("Parse(%s) still running after 5s: a runaway range", tc.text)
		case err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "{{range $name, $value := .Attributes}}"):
			t.Errorf("Parse(%s) = %v, want an error with %q and what to write instead", tc.text, err, tc.want)
		}
	}
	d := &syncmap.Data{Attributes: syncmap.Attrs{"Tier": "gold", "Account": "A-1"}, Values: syncmap.Attrs{"Segment": "smb"}}
	for _, tc := range []struct{ text, want string }{
		{`{{range .Attributes}}{{.}};{{end}}`, "A-1;gold;"},
		{`{{range $k, $v := .Attributes}}{{$k}}={{$v}};{{end}}`, "Account=A-1;Tier=gold;"},
		{`{{range $k, $v := .Values}}{{$k}}={{$v}}{{end}}`, "Segment=smb"},
		{`{{with .Attributes}}{{range .}}{{.}};{{end}}{{end}}`, "A-1;gold;"},
		{`{{range .Values}}{{range $k, $v := $.Attributes}}{{$k}};{{end}}{{end}}`, "Account;Tier;"},
		{`{{define "list"}}{{range .}}{{.}};{{end}}{{end}}{{template "list" .Attributes}}`, "A-1;gold;"},
		{`{{$a := .Attributes}}{{range $a}}{{.}};{{end}}`, "A-1;gold;"},
		{`{{range or .Values .Attributes}}{{.}}{{end}}`, "smb"},
		{`{{range .Attributes}}{{.}}{{else}}none{{end}}{{.Start.Unix}}`, "A-1gold-62135596800"},
	} {
		tpl, err, ok := parse(tc.text)
		if !ok || err != nil {
			t.Errorf("Parse(%s) = %v (done: %v), want it accepted", tc.text, err, ok)
			continue
		}
		if got, err := tpl.Render(d, syncmap.Format{}); err != nil || got != tc.want {
			t.Errorf("Render(%s) = %q, %v; want %q", tc.text, got, err, tc.want)
		}
	}
}
