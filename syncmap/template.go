package syncmap

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"
)

// Funcs returns the helpers every sync template may use, rendering times
// with f:
//
//	duration X      h:mm:ss of a time.Duration, or of a number of seconds
//	time T [LAYOUT] a time.Time in the configured zone and layout (or LAYOUT)
//	default D V     V, or D when V is empty
//	truncate N V    V cut to N characters, with "…" when cut
//	join SEP LIST   the non-empty items of a list joined with SEP
//	upper, lower, trim
func Funcs(f Format) template.FuncMap {
	return template.FuncMap{
		"duration": func(v any) (string, error) {
			switch x := v.(type) {
			case Duration:
				return HMS(x.Duration), nil
			case time.Duration:
				return HMS(x), nil
			case int:
				return HMS(time.Duration(x) * time.Second), nil
			case int64:
				return HMS(time.Duration(x) * time.Second), nil
			case float64:
				return HMS(time.Duration(x * float64(time.Second))), nil
			case string:
				if x == "" {
					return "", nil
				}
				if n, err := strconv.ParseFloat(x, 64); err == nil {
					return HMS(time.Duration(n * float64(time.Second))), nil
				}
				if d, err := time.ParseDuration(x); err == nil {
					return HMS(d), nil
				}
				return "", fmt.Errorf("duration: %q is not a duration or a number of seconds", x)
			case nil:
				return "", nil
			}
			return "", fmt.Errorf("duration: cannot render %T", v)
		},
		"time": func(v any, layout ...string) (string, error) {
			g := f
			if len(layout) > 0 && layout[0] != "" {
				g.Layout = layout[0]
			}
			switch x := v.(type) {
			case Time:
				return g.Time(x.Time), nil
			case time.Time:
				return g.Time(x), nil
			case *time.Time:
				if x == nil {
					return "", nil
				}
				return g.Time(*x), nil
			case string:
				if x == "" {
					return "", nil
				}
				t, err := time.Parse(time.RFC3339, x)
				if err != nil {
					return "", fmt.Errorf("time: %q is not an RFC 3339 time", x)
				}
				return g.Time(t), nil
			case nil:
				return "", nil
			}
			return "", fmt.Errorf("time: cannot render %T", v)
		},
		"default": func(def string, v any) string {
			s := toString(v)
			if strings.TrimSpace(s) == "" {
				return def
			}
			return s
		},
		"truncate": func(n int, v any) string { return Truncate(toString(v), n, "…") },
		"join": func(sep string, v any) string {
			rv := reflect.ValueOf(v)
			if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
				return toString(v)
			}
			var parts []string
			for i := range rv.Len() {
				if s := toString(rv.Index(i).Interface()); s != "" {
					parts = append(parts, s)
				}
			}
			return strings.Join(parts, sep)
		},
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"trim":  strings.TrimSpace,
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// Truncate cuts s to at most n characters (runes), ending with marker when
// it was cut; the marker counts toward n.
func Truncate(s string, n int, marker string) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	keep := n - utf8.RuneCountInString(marker)
	if keep < 0 {
		keep = 0
		marker = string([]rune(marker)[:n])
	}
	i := 0
	for j := range s {
		if i == keep {
			return s[:j] + marker
		}
		i++
	}
	return s + marker
}

// Template is a parsed sync template. It is safe for concurrent use.
type Template struct {
	t *template.Template
	f Format // the format t's helpers were bound to
}

// Parse parses a template over Data. It checks the syntax, that every
// helper exists, and that every data point named exists, so that a typo is
// an error at load time rather than an empty field at sync time.
func Parse(name, text string) (*Template, error) {
	return ParseFormat(name, text, Format{})
}

// ParseFormat is Parse with the helpers bound to f, so that Render with
// the same f does not copy the template.
func ParseFormat(name, text string, f Format) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("template %s: %v", name, r)
		}
	}()
	tt, err := template.New(name).Option("missingkey=zero").Funcs(Funcs(f)).Parse(text)
	if err != nil {
		return nil, cleanErr(err)
	}
	if err := checkRanges(tt); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	// Execute against sample data: unknown fields and wrong helper
	// arguments surface now.
	if err := tt.Execute(&limitWriter{w: new(bytes.Buffer), n: MaxRender}, sample()); err != nil {
		return nil, cleanErr(err)
	}
	return &Template{t: tt, f: f}, nil
}

// Name is the template's name.
func (t *Template) Name() string { return t.t.Name() }

// Check reports whether text is a valid sync template.
func Check(text string) error {
	_, err := Parse("check", text)
	return err
}

// Render executes the template over d, times rendered with f. A template
// that fails (or panics) returns an error, never a partial value.
func (t *Template) Render(d *Data, f Format) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("template %s: %v", t.t.Name(), r)
		}
	}()
	if d == nil {
		d = &Data{}
	}
	c := t.t
	if f != t.f {
		if c, err = t.t.Clone(); err != nil {
			return "", err
		}
		c.Funcs(Funcs(f))
	}
	var b strings.Builder
	if err := c.Execute(&limitWriter{w: &b, n: MaxRender}, d); err != nil {
		return "", cleanErr(err)
	}
	return b.String(), nil
}

// MaxRender bounds what one template renders (Zendesk keeps far less; the
// bound stops a runaway range before it exhausts memory).
const MaxRender = 4 << 20

// errTooLong stops a template that renders more than MaxRender bytes.
var errTooLong = fmt.Errorf("renders more than %d MiB: check its range loops", MaxRender>>20)

type limitWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		l.n = 0
		return 0, errTooLong
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// checkRanges rejects range over a number (Go 1.22 templates can loop
// {{range 1000000000000}}, hanging the process at load or sync time). A
// large number can only come from a literal in the template (the data
// points and helpers give strings, times, durations, lists and maps; len
// is bounded by the data), so the check is on the parse tree: no range
// whose pipeline has a number literal or a variable declared from one,
// and no with or template call that would make dot a number.
func checkRanges(t *template.Template) error {
	numVars := map[string]bool{}
	var hasNumber func(n parse.Node) bool
	hasNumber = func(n parse.Node) bool {
		switch x := n.(type) {
		case *parse.NumberNode:
			return true
		case *parse.VariableNode:
			return len(x.Ident) > 0 && numVars[x.Ident[0]]
		case *parse.PipeNode:
			if x == nil {
				return false
			}
			for _, c := range x.Cmds {
				if hasNumber(c) {
					return true
				}
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				if hasNumber(a) {
					return true
				}
			}
		case *parse.ChainNode:
			return hasNumber(x.Node)
		}
		return false
	}
	var err error
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		if err != nil || n == nil {
			return
		}
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(x.Pipe)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			if len(x.Decl) > 0 && hasNumber(x) {
				for _, v := range x.Decl {
					numVars[v.Ident[0]] = true
				}
			}
		case *parse.IfNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.WithNode:
			walk(x.Pipe)
			if hasNumber(x.Pipe) { // dot would be a number
				err = errors.New("with over a number is not supported in sync templates")
				return
			}
			walk(x.List)
			walk(x.ElseList)
		case *parse.RangeNode:
			walk(x.Pipe)
			if hasNumber(x.Pipe) {
				err = errors.New("range over a number is not supported in sync templates: range over a list or map data point")
				return
			}
			walk(x.List)
			walk(x.ElseList)
		case *parse.TemplateNode:
			walk(x.Pipe)
			if hasNumber(x.Pipe) { // dot would be a number
				err = errors.New("calling a template with a number is not supported in sync templates")
			}
		}
	}
	// Variables declared anywhere count (conservative): two passes, so a
	// declaration after its use in a defined template is seen too.
	for range 2 {
		for _, tt := range t.Templates() {
			if tt.Tree != nil {
				walk(tt.Tree.Root)
			}
		}
	}
	return err
}

func sample() *Data {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &Data{
		ConversationID: "sample", Start: Time{now}, Connect: Time{now}, End: Time{now.Add(time.Minute)},
		Duration: Duration{time.Minute}, Talk: Duration{time.Minute}, Attributes: Attrs{}, Values: Attrs{},
	}
}

// cleanErr turns text/template's messages into something a person editing
// YAML can act on.
func cleanErr(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "can't evaluate field "); i >= 0 {
		field := msg[i+len("can't evaluate field "):]
		if j := strings.IndexByte(field, ' '); j >= 0 {
			field = field[:j]
		}
		return fmt.Errorf("unknown data point .%s (see the data point catalog: %s)", field, strings.Join(Names(), ", "))
	}
	return errors.New(strings.TrimPrefix(msg, "template: "))
}

// Names lists the data point names templates can use, in catalog order.
func Names() []string {
	out := make([]string, 0, len(Catalog))
	for _, p := range Catalog {
		out = append(out, p.Name)
	}
	return out
}
