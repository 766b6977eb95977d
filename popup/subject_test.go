package popup_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/popup"
)

func TestDefaultSubject(t *testing.T) {
	t.Parallel()
	jane := cti.Customer{Name: "Jane Doe", Phone: "+14155551212"}
	tests := []struct {
		rule string
		c    cti.Conversation
		want string
	}{
		{"", cti.Conversation{Media: cti.MediaVoice, Direction: cti.Inbound, Customer: jane}, "Call from Jane Doe (+14155551212)"},
		{"", cti.Conversation{Media: cti.MediaVoice, Direction: cti.Outbound, Customer: cti.Customer{Phone: "+14155551212"}}, "Call to +14155551212"},
		{"", cti.Conversation{Media: cti.MediaCallback, Customer: jane}, "Callback to Jane Doe (+14155551212)"},
		{"", cti.Conversation{Media: cti.MediaEmail, Customer: cti.Customer{Email: "j@example.com"}, Content: cti.Content{EmailSubject: " Refund please "}}, "Refund please"},
		{"", cti.Conversation{Media: cti.MediaEmail, Customer: cti.Customer{Email: "j@example.com"}}, "Email from j@example.com"},
		{"", cti.Conversation{Media: cti.MediaChat, Customer: cti.Customer{Name: "  Jane   Doe "}}, "Chat with Jane Doe"},
		{"", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelWhatsApp, Customer: jane}, "WhatsApp conversation with Jane Doe (+14155551212)"},
		{"", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelSMS, Customer: cti.Customer{Phone: "+14155551212"}}, "SMS conversation with +14155551212"},
		{"", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelFacebook, Customer: cti.Customer{Handle: "1000123"}}, "Facebook Messenger conversation with 1000123"},
		{"", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelTwitter, Customer: cti.Customer{Handle: "@acme"}}, "X conversation with @acme"},
		{"", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelInstagram}, "Instagram conversation with unknown customer"},
		{"", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelLine, Customer: cti.Customer{Address: "U123"}}, "LINE conversation with U123"},
		{"", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelWebMessaging, Customer: jane}, "Web messaging conversation with Jane Doe (+14155551212)"},
		{"", cti.Conversation{Media: cti.MediaMessage, Customer: jane}, "Message conversation with Jane Doe (+14155551212)"},
		{"", cti.Conversation{Media: "fax"}, "Conversation with unknown customer"},
		{"  VIP line  ", cti.Conversation{Media: cti.MediaVoice, Customer: jane}, "VIP line"},
		{"VIP call from {{.Customer.Name}} on {{.Queue.Name}}", cti.Conversation{Media: cti.MediaVoice, Customer: jane, Queue: cti.Ref{Name: "Gold"}}, "VIP call from Jane Doe on Gold"},
		{"{{.NoSuchField}}", cti.Conversation{Media: cti.MediaVoice, Customer: jane}, "Call from Jane Doe (+14155551212)"},   // template error: media default
		{"{{.Customer.Name", cti.Conversation{Media: cti.MediaChat, Customer: jane}, "Chat with Jane Doe (+14155551212)"},    // does not parse
		{"{{.Customer.Email}}", cti.Conversation{Media: cti.MediaChat, Customer: jane}, "Chat with Jane Doe (+14155551212)"}, // renders empty
	}
	for _, tt := range tests {
		c := tt.c
		if got := popup.DefaultSubject(&cti.Rule{Subject: tt.rule}, &c); got != tt.want {
			t.Errorf("DefaultSubject(%q, %s/%s) = %q, want %q", tt.rule, tt.c.Media, tt.c.Channel, got, tt.want)
		}
	}
	if got := popup.DefaultSubject(nil, nil); got != "Conversation with unknown customer" {
		t.Errorf("DefaultSubject(nil, nil) = %q", got)
	}
}

func TestSubjectTemplateCannotMutate(t *testing.T) {
	t.Parallel()
	c := &cti.Conversation{ID: "c1", Media: cti.MediaChat, Customer: cti.Customer{Name: "Jane"}}
	// Merge has a pointer receiver: out of reach on the copy the template gets.
	got := popup.DefaultSubject(&cti.Rule{Subject: `{{.Merge .}}x`}, c)
	if got != "Chat with Jane" || c.ID != "c1" {
		t.Errorf("got %q, conversation %+v", got, c)
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"héllo wörld", 6, "héllo…"},
		{"日本語のテキスト", 4, "日本語…"},
		{"abc", 0, ""},
		{strings.Repeat("a", 200), 150, strings.Repeat("a", 149) + "…"},
	} {
		if got := popup.Truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

// TestSubjectTemplateCannotRunAway: a subject's template runs on the pop's
// path: a range (here over a number, which would count to billions) or an
// endless output gives the per-media default instead.
func TestSubjectTemplateCannotRunAway(t *testing.T) {
	c := &cti.Conversation{ID: "c", Media: cti.MediaVoice, Direction: cti.Inbound, StartTime: time.Now(),
		Customer: cti.Customer{Name: "Jane", Phone: "+14155551212"}}
	for _, subject := range []string{
		"{{range .StartTime.Unix}}x{{end}}",
		"{{if true}}{{with .Customer}}{{range .Name}}{{end}}{{end}}{{end}}",
		`{{define "a"}}{{range 3}}{{end}}{{end}}Call {{template "a"}}`,
		`{{printf "%2000000d" 1}}`,
	} {
		done := make(chan string, 1)
		go func() { done <- popup.DefaultSubject(&cti.Rule{Subject: subject}, c) }()
		select {
		case got := <-done:
			if want := popup.MediaSubject(c); got != want {
				t.Errorf("subject %q = %q, want the default %q", subject, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("subject %q still rendering after 5s", subject)
		}
	}
}
