// Package config loads ctikit's rules file: the YAML no-code surface that
// says which Genesys queues and users to watch and, per queue / campaign /
// media, what to identify, pop and sync.
//
// Every mistake is reported at load time, all at once, each naming the line,
// the key path, the value and the fix:
//
//	line 9: rules[0].when.media[1]: "fax": unknown media: want one of voice, callback, ...
//
// Values may reference the environment as ${NAME} or ${NAME:-default}; a
// plain value is then read as YAML reads what it expands to (${EARLY} set to
// true is a boolean), a quoted one stays text.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
)

// Config is a loaded rules file.
type Config struct {
	// Rules are the subscriptions and rules, defaults applied and validated.
	Rules cti.Rules
	// Time says how sync templates render times.
	Time Time
	// Agents overrides the agent directory: Genesys user id or email →
	// Zendesk agent id or email.
	Agents map[string]string
}

// Time is the optional time section.
type Time struct {
	Zone   string // IANA zone name, e.g. "Europe/Paris"; default UTC
	Layout string // Go time layout; default syncmap.DefaultLayout
}

// Format is the syncmap.Format the time section describes.
func (t Time) Format() syncmap.Format {
	f := syncmap.Format{Layout: t.Layout}
	if t.Zone != "" {
		f.Location, _ = time.LoadLocation(t.Zone) // validated at load
	}
	return f
}

type options struct {
	lookupEnv func(string) (string, bool)
	check     func(string) error
}

// Option configures loading.
type Option func(*options)

// WithLookupEnv replaces os.LookupEnv for ${NAME} references.
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = f }
}

// WithTemplateCheck replaces the template validator (default
// syncmap.Check): integrators with their own field mapper check their own
// template language.
func WithTemplateCheck(f func(text string) error) Option {
	return func(o *options) { o.check = f }
}

// Load reads and parses a rules file.
func Load(path string, opts ...Option) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b, opts...)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// raw mirrors the file; identify entries are parsed by hand for errors
// with paths.
type raw struct {
	Subscribe cti.Subscribe     `yaml:"subscribe"`
	Rules     []rawRule         `yaml:"rules"`
	Time      rawTime           `yaml:"time"`
	Agents    map[string]string `yaml:"agents"`
}

type rawTime struct {
	Zone   string `yaml:"zone"`
	Layout string `yaml:"layout"`
}

type rawRule struct {
	Name     string       `yaml:"name"`
	When     cti.When     `yaml:"when"`
	Identify []string     `yaml:"identify"`
	Popup    string       `yaml:"popup"`
	PopOn    string       `yaml:"pop_on"`
	Multiple string       `yaml:"multiple"`
	NoMatch  string       `yaml:"nomatch"`
	Subject  string       `yaml:"subject"`
	Sync     cti.SyncSpec `yaml:"sync"`
	Early    bool         `yaml:"identify_early"`
}

// Parse parses a rules file's content.
func Parse(data []byte, opts ...Option) (*Config, error) {
	o := options{lookupEnv: os.LookupEnv, check: syncmap.Check}
	for _, f := range opts {
		f(&o)
	}
	doc, err := document(data)
	if err != nil {
		return nil, err
	}
	l := &loader{env: o.lookupEnv, lines: map[string]int{}}
	l.walk(doc.Content[0], "", schema)
	if len(l.errs) > 0 {
		return nil, l.joined()
	}
	var r raw
	if err := doc.Content[0].Decode(&r); err != nil {
		return nil, &cti.ConfigError{Path: "(file)", Reason: strings.TrimPrefix(err.Error(), "yaml: ")}
	}

	cfg := &Config{Agents: r.Agents, Time: Time{Zone: r.Time.Zone, Layout: r.Time.Layout}}
	cfg.Rules.Subscribe = r.Subscribe
	for i, rr := range r.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		rule := cti.Rule{
			Name: rr.Name, When: rr.When, Popup: cti.Popup(rr.Popup), PopOn: cti.PopOn(rr.PopOn),
			Multiple: cti.Multiple(rr.Multiple), NoMatch: cti.NoMatch(rr.NoMatch), Subject: rr.Subject, Sync: rr.Sync,
			IdentifyEarly: rr.Early,
		}
		for k, s := range rr.Identify {
			spec, err := cti.ParseIdentify(strings.TrimSpace(s))
			if err != nil {
				l.add(fmt.Sprintf("%s.identify[%d]", p, k), s, err.Error())
				continue
			}
			rule.Identify = append(rule.Identify, spec)
		}
		l.template(p+".subject", rule.Subject, o.check)
		l.template(p+".sync.template", rule.Sync.Template, o.check)
		for _, id := range slices.Sorted(maps.Keys(rule.Sync.Fields)) {
			l.template(p+".sync.fields."+id, rule.Sync.Fields[id], o.check)
		}
		cfg.Rules.Rules = append(cfg.Rules.Rules, rule)
	}
	if err := cfg.Rules.Validate(); err != nil {
		var ce *cti.ConfigError
		for _, e := range unjoin(err) {
			if errors.As(e, &ce) {
				l.errs = append(l.errs, ce)
			}
		}
	}
	if r.Time.Zone != "" {
		if _, err := time.LoadLocation(r.Time.Zone); err != nil {
			l.add("time.zone", r.Time.Zone, "unknown time zone: use an IANA name such as UTC, Europe/Paris, America/New_York")
		}
	}
	if r.Time.Layout != "" && !strings.ContainsAny(r.Time.Layout, "0123456789") {
		l.add("time.layout", r.Time.Layout, "not a Go time layout: write the reference time, e.g. 2006-01-02 15:04 MST")
	}
	for k, v := range r.Agents {
		if strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			l.add("agents."+k, v, "map a Genesys user id or email to a Zendesk agent id or email; neither may be empty")
		}
	}
	if len(l.errs) > 0 {
		return nil, l.joined()
	}
	cfg.Rules.ApplyDefaults()
	return cfg, nil
}

// document reads the file's one YAML document. A file holds one document:
// a second one (after a --- line) would be silently ignored, so it is an
// error unless it is empty.
func document(data []byte) (*yaml.Node, error) {
	invalid := func(err error) error {
		reason := "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
		if strings.Contains(string(data), "${") {
			reason += ` (hint: quote values that use ${...} inside [ ] or { }, e.g. ["${QUEUE_ID}"])`
		}
		return &cti.ConfigError{Path: "(file)", Reason: reason}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, invalid(err)
	}
	if len(doc.Content) == 0 {
		return nil, &cti.ConfigError{Path: "(file)", Reason: "the file is empty: it needs at least subscribe and rules"}
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			return &doc, nil
		}
		if err != nil {
			return nil, invalid(err)
		}
		if len(next.Content) == 1 && next.Content[0].Kind == yaml.ScalarNode && next.Content[0].Tag == "!!null" && next.Content[0].Value == "" {
			continue // a trailing --- with nothing after it
		}
		return nil, &cti.ConfigError{Path: "(file)", Line: next.Line,
			Reason: "a second YAML document starts here (after ---) and would be ignored: a rules file is one document; remove the --- line and merge its keys into the first document"}
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

type loader struct {
	env   func(string) (string, bool)
	lines map[string]int
	errs  []*cti.ConfigError
}

func (l *loader) add(path, value, reason string) {
	l.errs = append(l.errs, &cti.ConfigError{Path: path, Value: value, Reason: reason})
}

func (l *loader) template(path, text string, check func(string) error) {
	if text == "" || check == nil {
		return
	}
	if err := check(text); err != nil {
		l.add(path, text, "template: "+err.Error())
	}
}

// joined attaches line numbers and returns every error, in file order.
func (l *loader) joined() error {
	for _, e := range l.errs {
		if e.Line == 0 {
			e.Line = l.line(e.Path)
		}
	}
	slices.SortStableFunc(l.errs, func(a, b *cti.ConfigError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// line finds the line of path or of its closest ancestor.
func (l *loader) line(path string) int {
	for p := path; p != ""; {
		if n, ok := l.lines[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// node is the expected shape of a YAML node.
type node struct {
	fields map[string]*node // a mapping with these keys
	list   *node            // a sequence of these (a single value is accepted as a list of one)
	values *node            // a mapping with any keys, values of this shape
	truth  bool             // a single value, true or false
}

var (
	scalar  = &node{}
	boolean = &node{truth: true}
)

func listOf(n *node) *node { return &node{list: n} }

var schema = &node{fields: map[string]*node{
	"subscribe": {fields: map[string]*node{"queues": listOf(scalar), "users": listOf(scalar)}},
	"rules": listOf(&node{fields: map[string]*node{
		"name": scalar,
		"when": {fields: map[string]*node{
			"queues": listOf(scalar), "campaigns": listOf(scalar), "media": listOf(scalar), "direction": scalar,
		}},
		"identify": listOf(scalar),
		"popup":    scalar, "pop_on": scalar, "multiple": scalar, "nomatch": scalar, "subject": scalar,
		"identify_early": boolean,
		"sync": {fields: map[string]*node{
			"ticket": scalar, "comment": scalar, "fields": {values: scalar}, "tags": listOf(scalar), "template": scalar,
		}},
	}}),
	"time":   {fields: map[string]*node{"zone": scalar, "layout": scalar}},
	"agents": {values: scalar},
}}

func join(path, key string) string {
	if key == "" {
		key = `""` // an empty key: named, so the message points at it
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a single value"
}

// walk checks n against the schema s, expands ${ENV} in values, turns a
// single value where a list is expected into a list, and records lines.
func (l *loader) walk(n *yaml.Node, path string, s *node) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		l.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value: the key's default
	}
	switch {
	case s.fields != nil:
		if n.Kind != yaml.MappingNode {
			l.errs = append(l.errs, &cti.ConfigError{Path: orTop(path), Line: n.Line, Reason: "want a mapping of keys, got " + kindName(n)})
			return
		}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub, ok := s.fields[k.Value]
			if !ok {
				l.errs = append(l.errs, &cti.ConfigError{Path: join(path, k.Value), Line: k.Line, Reason: unknownKey(k.Value, s)})
				continue
			}
			if l.twice(seen, k, path) {
				continue
			}
			l.walk(v, join(path, k.Value), sub)
		}
	case s.values != nil:
		if n.Kind != yaml.MappingNode {
			l.errs = append(l.errs, &cti.ConfigError{Path: orTop(path), Line: n.Line, Reason: "want a mapping, got " + kindName(n)})
			return
		}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				l.errs = append(l.errs, &cti.ConfigError{Path: join(path, k.Value), Line: k.Line, Reason: "want a single value as the key, got " + kindName(k)})
				continue
			}
			if l.expand(k, join(path, k.Value)) && l.typed(k, join(path, k.Value), scalar) {
				if k.Tag == "!!null" {
					// Decoding would drop the entry.
					l.errs = append(l.errs, &cti.ConfigError{Path: join(path, k.Value), Line: k.Line, Value: k.Value,
						Reason: "empty key: write a key or remove the entry"})
					continue
				}
				if l.twice(seen, k, path) {
					continue
				}
			}
			l.walk(v, join(path, k.Value), s.values)
		}
	case s.list != nil:
		if n.Kind == yaml.ScalarNode {
			item := *n
			*n = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: n.Line, Column: n.Column, Content: []*yaml.Node{&item}}
		}
		if n.Kind != yaml.SequenceNode {
			l.errs = append(l.errs, &cti.ConfigError{Path: path, Line: n.Line, Reason: "want a list, got " + kindName(n)})
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			l.walk(item, p, s.list)
			if item.Kind == yaml.AliasNode && item.Alias != nil {
				item = item.Alias
			}
			if item.Kind == yaml.ScalarNode && item.Tag == "!!null" {
				// Decoding would drop the item: [~] would become [], which
				// means any.
				l.errs = append(l.errs, &cti.ConfigError{Path: p, Line: item.Line, Value: item.Value,
					Reason: "empty item: write a value or remove the item (to mean any, leave the whole list empty)"})
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			l.errs = append(l.errs, &cti.ConfigError{Path: path, Line: n.Line, Reason: "want a single value, got " + kindName(n)})
			return
		}
		if l.expand(n, path) {
			l.typed(n, path, s)
		}
	}
}

// twice reports a key given twice in one mapping (the YAML decoder would
// reject it without saying where) and records k in seen.
func (l *loader) twice(seen map[string]*yaml.Node, k *yaml.Node, path string) bool {
	first, dup := seen[k.Value]
	if !dup {
		seen[k.Value] = k
		return false
	}
	name, where := k.Value, "in "+path
	if name == "" {
		name = `""`
	}
	if path == "" {
		where = "at the top level"
	}
	l.errs = append(l.errs, &cti.ConfigError{Path: join(path, k.Value), Line: k.Line,
		Reason: fmt.Sprintf("%s is given twice %s (lines %d and %d): keep one", name, where, first.Line, k.Line)})
	return true
}

// typed checks that the scalar n decodes into what s expects, so a wrong
// type is reported with its key path rather than by the YAML decoder.
func (l *loader) typed(n *yaml.Node, path string, s *node) bool {
	var err error
	if s.truth {
		var b bool
		err = n.Decode(&b)
	} else {
		var str string
		err = n.Decode(&str)
	}
	if err == nil {
		return true
	}
	reason := "want a single value"
	switch {
	case s.truth && n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0:
		reason = "want true or false, without quotes"
	case s.truth && n.Style&yaml.TaggedStyle != 0:
		reason = "want true or false, without the tag " + n.Tag
	case s.truth:
		reason = "want true or false"
	case n.Style&yaml.TaggedStyle != 0:
		reason = "the value does not fit its tag " + n.Tag + ": remove the tag"
	}
	l.errs = append(l.errs, &cti.ConfigError{Path: path, Line: n.Line, Value: n.Value, Reason: reason})
	return false
}

func orTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expand replaces ${NAME} and ${NAME:-default} in a scalar, reporting
// false when a variable is not set. The result is read as YAML reads the
// value written out: a plain value by its content (true is a boolean, an
// empty value is no value), a quoted, block or tagged one as it was.
func (l *loader) expand(n *yaml.Node, path string) bool {
	if !strings.Contains(n.Value, "${") {
		return true
	}
	set := true
	n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
		sub := envRef.FindStringSubmatch(m)
		if v, ok := l.env(sub[1]); ok && v != "" {
			return v
		}
		if sub[2] != "" {
			return sub[3]
		}
		set = false
		l.errs = append(l.errs, &cti.ConfigError{Path: path, Line: n.Line, Value: m,
			Reason: "environment variable " + sub[1] + " is not set: set it, or write ${" + sub[1] + ":-default}"})
		return ""
	})
	switch {
	case !set:
		n.Tag = "!!str" // already reported: no second error for the same value
	case n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0:
		n.Tag = ""
		if n.Tag = n.ShortTag(); n.Tag == "!!merge" {
			n.Tag = "!!str" // a key made "<<" is not a merge
		}
	}
	return set
}

func unknownKey(k string, s *node) string {
	keys := make([]string, 0, len(s.fields))
	for f := range s.fields {
		keys = append(keys, f)
	}
	slices.Sort(keys)
	best, bestD := "", 3
	for _, f := range keys {
		if d := distance(strings.ToLower(k), f); d < bestD {
			best, bestD = f, d
		}
	}
	msg := "unknown key"
	if best != "" {
		msg += ": did you mean " + strconv.Quote(best) + "?"
	}
	return msg + " (known here: " + strings.Join(keys, ", ") + ")"
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
