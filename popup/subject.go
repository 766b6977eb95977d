package popup

import (
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/cxplay/ctikit/cti"
)

// MaxSubject is the longest subject the strategy puts in a decision, in
// characters; longer ones are cut with "…".
const MaxSubject = 150

// DefaultSubject is the default SubjectFunc. A rule's Subject without
// "{{" is used as is; with it, it is executed as a text/template with the
// cti.Conversation as dot (e.g. "Call from {{.Customer.Name}}"), and on a
// template error the per-media default is used (so too for a template
// with a range, or an output past 16 × MaxSubject bytes). Without a rule Subject,
// the per-media default: "Call from Jane Doe (+14155551212)", "Call to …"
// (outbound), "Callback to …", the email's subject or "Email from …",
// "Chat with …", "WhatsApp conversation with …" (SMS, Facebook Messenger,
// Instagram, X, LINE, web messaging likewise).
func DefaultSubject(rule *cti.Rule, c *cti.Conversation) string {
	if c == nil {
		c = &cti.Conversation{}
	}
	if rule != nil && strings.TrimSpace(rule.Subject) != "" {
		if !strings.Contains(rule.Subject, "{{") {
			return strings.TrimSpace(rule.Subject)
		}
		if s, ok := render(rule.Subject, c); ok {
			return s
		}
	}
	return MediaSubject(c)
}

var templates sync.Map // source -> *template.Template, or nil when it does not parse

func render(src string, c *cti.Conversation) (string, bool) {
	v, ok := templates.Load(src)
	if !ok {
		t, err := template.New("subject").Option("missingkey=error").Parse(src)
		if err != nil || ranges(t) {
			t = nil
		}
		v, _ = templates.LoadOrStore(src, t)
	}
	t, _ := v.(*template.Template)
	if t == nil {
		return "", false
	}
	var b strings.Builder
	// A copy as dot: methods that change a conversation (Merge) are out of
	// a template's reach.
	if err := t.Execute(&capped{w: &b, n: 16 * MaxSubject}, *c); err != nil {
		return "", false
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	return s, s != ""
}

// ranges reports whether a template has a range: a subject is one line,
// and {{range .StartTime.Unix}} would count to billions on the pop's path.
func ranges(t *template.Template) bool {
	var walk func(n parse.Node) bool
	walk = func(n parse.Node) bool {
		switch x := n.(type) {
		case *parse.RangeNode:
			return true
		case *parse.ListNode:
			if x != nil {
				return slices.ContainsFunc(x.Nodes, walk)
			}
		case *parse.IfNode:
			return walk(x.List) || walk(x.ElseList)
		case *parse.WithNode:
			return walk(x.List) || walk(x.ElseList)
		}
		return false
	}
	return slices.ContainsFunc(t.Templates(), func(t *template.Template) bool { return t.Tree != nil && walk(t.Tree.Root) })
}

// capped fails a write past n bytes: a subject's template cannot fill the
// memory.
type capped struct {
	w io.Writer
	n int
}

func (c *capped) Write(p []byte) (int, error) {
	if len(p) > c.n {
		return 0, errors.New("popup: subject too long")
	}
	c.n -= len(p)
	return c.w.Write(p)
}

var channelNames = map[cti.Channel]string{
	cti.ChannelSMS:          "SMS",
	cti.ChannelWhatsApp:     "WhatsApp",
	cti.ChannelFacebook:     "Facebook Messenger",
	cti.ChannelInstagram:    "Instagram",
	cti.ChannelTwitter:      "X",
	cti.ChannelLine:         "LINE",
	cti.ChannelWebMessaging: "Web messaging",
	cti.ChannelOpen:         "Message",
}

// MediaSubject is the per-media default subject for c.
func MediaSubject(c *cti.Conversation) string {
	who := Who(c)
	switch c.Media {
	case cti.MediaVoice:
		if c.Direction == cti.Outbound {
			return "Call to " + who
		}
		return "Call from " + who
	case cti.MediaCallback:
		return "Callback to " + who
	case cti.MediaEmail:
		if s := strings.TrimSpace(c.Content.EmailSubject); s != "" {
			return s
		}
		return "Email from " + who
	case cti.MediaChat:
		return "Chat with " + who
	case cti.MediaMessage:
		name := channelNames[c.Channel]
		if name == "" {
			name = "Message"
		}
		return name + " conversation with " + who
	}
	return "Conversation with " + who
}

// Who names the customer of c: "Jane Doe (+14155551212)", the name, the
// phone, email, handle or address alone, or "unknown customer".
func Who(c *cti.Conversation) string {
	cu := c.Customer
	id := cu.Phone
	for _, v := range []string{cu.Email, cu.Handle, cu.Address} {
		if id == "" {
			id = v
		}
	}
	name := strings.Join(strings.Fields(cu.Name), " ")
	id = strings.Join(strings.Fields(id), " ")
	switch {
	case name != "" && id != "" && name != id:
		return name + " (" + id + ")"
	case name != "":
		return name
	case id != "":
		return id
	}
	return "unknown customer"
}

// Truncate cuts s to at most n characters, ending with "…" when cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}
