package syncmap

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
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

// checkRanges refuses a range that could hang the process at load or
// sync time. Go templates range over integers ({{range .Start.Unix}}
// counts to the current Unix time, with no output to stop it), channels
// and iterator functions as well as lists and maps, so the check follows
// the static type of every value the template ranges over, from Data
// through fields, methods, helpers, variables, with, range and template
// calls: only a list or map (the Attributes and Values data points, or a
// field of Data of such a type) may be ranged over. A value whose type is
// not known there (from call, or an index into a map of any) is refused
// too; one that cannot be evaluated at all is left to the sample
// execution, which reports it.
func checkRanges(t *template.Template) error {
	c := &rangeChecker{t: t, vars: map[varKey]typeSet{}}
	// Variables are typed with every value given to them anywhere in
	// their template (conservative: a later assignment in a loop reaches
	// earlier uses), up to a fixed point.
	for range 32 {
		c.changed, c.done = false, map[doneKey]bool{}
		c.template(t, typeOf[*Data]())
		if c.err != nil {
			return c.err
		}
		if !c.changed {
			return nil
		}
	}
	return errors.New("its variables are too intricate to check: simplify them")
}

// invalidType stands for a value that cannot be evaluated (an unknown
// field, a nil template argument): executing it fails or ranges over
// nothing, so it never hangs.
type invalidType struct{}

// typeSet is the static types a value may have; a nil member is a type
// not known.
type typeSet map[reflect.Type]bool

func one(t reflect.Type) typeSet { return typeSet{t: true} }

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

type varKey struct{ tmpl, name string }

type doneKey struct {
	tmpl string
	dot  reflect.Type
}

type rangeChecker struct {
	t       *template.Template
	vars    map[varKey]typeSet
	done    map[doneKey]bool
	changed bool
	err     error
}

// scope is where a node is checked: its template, dot, and $.
type scope struct {
	tree      *parse.Tree
	tmpl      string
	dot, root typeSet
}

// template checks t executed with dot of type dot.
func (c *rangeChecker) template(t *template.Template, dot reflect.Type) {
	k := doneKey{t.Name(), dot}
	if c.done[k] || t.Tree == nil {
		return
	}
	c.done[k] = true
	sc := scope{tree: t.Tree, tmpl: t.Name(), dot: one(dot), root: one(dot)}
	c.walk(sc, t.Tree.Root)
}

func (c *rangeChecker) walk(sc scope, n parse.Node) {
	if c.err != nil || n == nil {
		return
	}
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, n := range x.Nodes {
			c.walk(sc, n)
		}
	case *parse.ActionNode:
		c.declare(sc, x.Pipe, c.pipe(sc, x.Pipe))
	case *parse.IfNode:
		c.declare(sc, x.Pipe, c.pipe(sc, x.Pipe))
		c.walk(sc, x.List)
		c.walk(sc, x.ElseList)
	case *parse.WithNode:
		ts := c.pipe(sc, x.Pipe)
		c.declare(sc, x.Pipe, ts)
		c.walk(scope{tree: sc.tree, tmpl: sc.tmpl, dot: ts, root: sc.root}, x.List)
		c.walk(sc, x.ElseList)
	case *parse.RangeNode:
		ts := c.pipe(sc, x.Pipe)
		keys, elems := typeSet{}, typeSet{}
		for t := range ts {
			k, e, why := rangeTypes(t)
			if why != "" {
				c.err = fmt.Errorf("%s{{range %s}}: %s: range over a list or map data point instead, such as {{range $name, $value := .Attributes}}", where(sc.tree, x), x.Pipe, why)
				return
			}
			keys[k], elems[e] = true, true
		}
		if d := x.Pipe.Decl; len(d) == 1 {
			c.assign(sc, d[0].Ident[0], elems)
		} else if len(d) == 2 {
			c.assign(sc, d[0].Ident[0], keys)
			c.assign(sc, d[1].Ident[0], elems)
		}
		c.walk(scope{tree: sc.tree, tmpl: sc.tmpl, dot: elems, root: sc.root}, x.List)
		c.walk(sc, x.ElseList)
	case *parse.TemplateNode:
		ts := one(typeOf[invalidType]()) // no argument: dot is nil
		if x.Pipe != nil {
			ts = c.pipe(sc, x.Pipe)
		}
		t := c.t.Lookup(x.Name)
		if t == nil {
			return // an execution error
		}
		for d := range ts {
			c.template(t, d)
		}
	}
}

// where is "line L, col C: " of node n of tree.
func where(tree *parse.Tree, n parse.Node) string {
	loc, _ := tree.ErrorContext(n)
	parts := strings.Split(loc, ":") // name:line:col
	if len(parts) < 3 {
		return ""
	}
	return "line " + parts[len(parts)-2] + ", col " + parts[len(parts)-1] + ": "
}

// rangeTypes returns the types of the index and element of a range over a
// value of type t, or why it is refused.
func rangeTypes(t reflect.Type) (key, elem reflect.Type, why string) {
	if t == nil {
		return nil, nil, "range over a value whose type is not known here is not supported in sync templates"
	}
	if t == typeOf[invalidType]() {
		return t, t, "" // fails, or ranges over nothing
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return typeOf[int](), t.Elem(), ""
	case reflect.Map:
		return t.Key(), t.Elem(), ""
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return nil, nil, fmt.Sprintf("range over a number is not supported in sync templates (a %s: the range counts up to it, and a large one never ends)", t)
	}
	return nil, nil, fmt.Sprintf("range over a %s is not supported in sync templates: only over a list or a map", t)
}

// declare gives the variables a pipeline declares or assigns its type.
func (c *rangeChecker) declare(sc scope, p *parse.PipeNode, ts typeSet) {
	if p == nil {
		return
	}
	for _, v := range p.Decl {
		c.assign(sc, v.Ident[0], ts)
	}
}

func (c *rangeChecker) assign(sc scope, name string, ts typeSet) {
	k := varKey{sc.tmpl, name}
	vs := c.vars[k]
	if vs == nil {
		vs = typeSet{}
		c.vars[k] = vs
	}
	for t := range ts {
		if !vs[t] {
			vs[t], c.changed = true, true
		}
	}
}

// pipe is the type of a pipeline: its last command's, each command
// getting the previous one's value as its last argument.
func (c *rangeChecker) pipe(sc scope, p *parse.PipeNode) typeSet {
	if p == nil {
		return one(typeOf[invalidType]())
	}
	var final typeSet
	for _, cmd := range p.Cmds {
		final = c.command(sc, cmd, final)
	}
	if final == nil {
		return one(typeOf[invalidType]())
	}
	return final
}

func (c *rangeChecker) command(sc scope, cmd *parse.CommandNode, final typeSet) typeSet {
	if len(cmd.Args) == 0 {
		return one(nil)
	}
	var args []typeSet
	for _, a := range cmd.Args[1:] {
		args = append(args, c.arg(sc, a))
	}
	if final != nil {
		args = append(args, final)
	}
	id, ok := cmd.Args[0].(*parse.IdentifierNode)
	if !ok {
		return c.arg(sc, cmd.Args[0])
	}
	switch id.Ident {
	case "len":
		return one(typeOf[int]())
	case "print", "printf", "println", "html", "js", "urlquery":
		return one(typeOf[string]())
	case "eq", "ne", "lt", "le", "gt", "ge", "not":
		return one(typeOf[bool]())
	case "and", "or": // one of its arguments
		out := typeSet{}
		for _, a := range args {
			maps.Copy(out, a)
		}
		return out
	case "index":
		if len(args) == 0 {
			return one(typeOf[invalidType]())
		}
		out := args[0]
		for range args[1:] {
			out = mapTypes(out, indexType)
		}
		return out
	case "slice":
		if len(args) == 0 {
			return one(typeOf[invalidType]())
		}
		return mapTypes(args[0], sliceType)
	}
	if fn, ok := Funcs(Format{})[id.Ident]; ok {
		if ft := reflect.TypeOf(fn); ft.NumOut() > 0 {
			return one(ft.Out(0))
		}
	}
	return one(nil) // call, or a helper added elsewhere: not known
}

// arg is the type of one operand.
func (c *rangeChecker) arg(sc scope, n parse.Node) typeSet {
	switch x := n.(type) {
	case *parse.DotNode:
		return sc.dot
	case *parse.FieldNode:
		return fieldTypes(sc.dot, x.Ident)
	case *parse.VariableNode:
		ts := sc.root
		if x.Ident[0] != "$" {
			ts = c.vars[varKey{sc.tmpl, x.Ident[0]}]
			if ts == nil {
				return one(nil)
			}
		}
		return fieldTypes(ts, x.Ident[1:])
	case *parse.ChainNode:
		return fieldTypes(c.arg(sc, x.Node), x.Field)
	case *parse.PipeNode:
		return c.pipe(sc, x)
	case *parse.NumberNode:
		switch {
		case x.IsInt:
			return one(typeOf[int]())
		case x.IsFloat:
			return one(typeOf[float64]())
		}
		return one(typeOf[complex128]())
	case *parse.StringNode:
		return one(typeOf[string]())
	case *parse.BoolNode:
		return one(typeOf[bool]())
	case *parse.NilNode:
		return one(typeOf[invalidType]())
	case *parse.IdentifierNode: // a function as an argument: an error
		return one(typeOf[invalidType]())
	}
	return one(nil)
}

func mapTypes(ts typeSet, f func(reflect.Type) reflect.Type) typeSet {
	out := typeSet{}
	for t := range ts {
		out[f(t)] = true
	}
	return out
}

// fieldTypes is the type of .A.B... (fields, methods, map keys) on a value
// of each type in ts.
func fieldTypes(ts typeSet, idents []string) typeSet {
	for _, name := range idents {
		ts = mapTypes(ts, func(t reflect.Type) reflect.Type { return fieldType(t, name) })
	}
	return ts
}

func fieldType(t reflect.Type, name string) reflect.Type {
	if t == nil || t == typeOf[invalidType]() {
		return t
	}
	if t.Kind() == reflect.Interface {
		return nil
	}
	// Methods of T and, addressable or not, of *T.
	for _, mt := range []reflect.Type{t, reflect.PointerTo(t)} {
		if m, ok := mt.MethodByName(name); ok {
			if m.Type.NumOut() == 0 {
				return typeOf[invalidType]()
			}
			return m.Type.Out(0)
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
		if m, ok := t.MethodByName(name); ok && m.Type.NumOut() > 0 {
			return m.Type.Out(0)
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if f, ok := t.FieldByName(name); ok {
			return f.Type
		}
	case reflect.Map:
		if t.Key().Kind() == reflect.String {
			return t.Elem()
		}
	case reflect.Interface:
		return nil
	}
	return typeOf[invalidType]()
}

// indexType is the type of index X i on X of type t.
func indexType(t reflect.Type) reflect.Type {
	if t == nil || t == typeOf[invalidType]() {
		return t
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return nil
		}
		return t.Elem()
	case reflect.String:
		return typeOf[uint8]()
	case reflect.Interface:
		return nil
	}
	return typeOf[invalidType]()
}

// sliceType is the type of slice X i j on X of type t.
func sliceType(t reflect.Type) reflect.Type {
	if t == nil || t == typeOf[invalidType]() {
		return t
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String, reflect.Slice:
		return t
	case reflect.Array:
		return reflect.SliceOf(t.Elem())
	case reflect.Interface:
		return nil
	}
	return typeOf[invalidType]()
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
