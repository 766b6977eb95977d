package syncmap

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cxplay/ctikit/cti"
)

// Mapper is the default cti.FieldMapper: it renders a rule's sync.fields
// (Zendesk ticket field id → template), its comment (sync.template, or the
// default comment for the conversation's media) and its tags, plus the
// idempotency marker tag of the job. Templates are compiled once, when the
// Mapper is built. Safe for concurrent use; no I/O.
type Mapper struct {
	cfg      *config
	rules    map[string]*ruleMap
	defaults map[string]*Template // default comment per kind
}

var _ cti.FieldMapper = (*Mapper)(nil)

type ruleMap struct {
	rule    *cti.Rule
	fields  []fieldMap // by field id
	comment *Template  // nil: the default comment of the kind
	late    []string   // late data points the templates name
}

type fieldMap struct {
	key string // as written in the rules
	id  int64
	t   *Template
}

// NewMapper compiles the sync section of every rule. A template that does
// not parse or names an unknown data point, or a field id that is not a
// number, is an error naming the rule and the field.
func NewMapper(rules *cti.Rules, opts ...Option) (*Mapper, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newMapper(rules, cfg)
}

func newMapper(rules *cti.Rules, cfg *config) (*Mapper, error) {
	if rules == nil {
		return nil, errors.New("syncmap: NewMapper: nil rules")
	}
	m := &Mapper{cfg: cfg, rules: map[string]*ruleMap{}, defaults: map[string]*Template{}}
	for _, k := range cti.Kinds {
		t, err := ParseFormat("comment."+k, DefaultTemplate(k), cfg.format)
		if err != nil {
			return nil, fmt.Errorf("syncmap: default comment for %s: %w", k, err) // a bug
		}
		m.defaults[k] = t
	}
	var errs []error
	for i := range rules.Rules {
		r := &rules.Rules[i]
		rm := &ruleMap{rule: r}
		var texts []string
		for _, key := range slices.Sorted(maps.Keys(r.Sync.Fields)) {
			path := fmt.Sprintf("rules[%d].sync.fields.%s", i, key)
			id, err := ParseFieldID(key)
			if err != nil {
				errs = append(errs, &cti.ConfigError{Path: path, Value: key, Reason: err.Error()})
				continue
			}
			text := r.Sync.Fields[key]
			t, err := ParseFormat(r.Name+".fields."+key, text, cfg.format)
			if err != nil {
				errs = append(errs, &cti.ConfigError{Path: path, Value: text, Reason: err.Error()})
				continue
			}
			rm.fields = append(rm.fields, fieldMap{key: key, id: id, t: t})
			texts = append(texts, text)
		}
		if r.Sync.Template != "" {
			t, err := ParseFormat(r.Name+".template", r.Sync.Template, cfg.format)
			if err != nil {
				errs = append(errs, &cti.ConfigError{Path: fmt.Sprintf("rules[%d].sync.template", i), Reason: err.Error()})
			} else {
				rm.comment = t
				texts = append(texts, r.Sync.Template)
			}
		}
		rm.late = referenced(texts, LatePoints())
		m.rules[r.Name] = rm
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("syncmap: %w", err)
	}
	return m, nil
}

// referenced returns the names among points that texts mention as .Name.
func referenced(texts, points []string) []string {
	var out []string
	for _, p := range points {
		for _, t := range texts {
			if i := strings.Index(t, "."+p); i >= 0 {
				end := i + 1 + len(p)
				if end == len(t) || !isIdent(t[end]) {
					out = append(out, p)
					break
				}
			}
		}
	}
	return out
}

func isIdent(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// Data computes the data points of job, with the mapper's time format and
// computed values.
func (m *Mapper) Data(job *cti.SyncJob) *Data {
	d := NewData(job, m.cfg.format)
	for _, c := range m.cfg.computed {
		v, err := c.t.Render(d, m.cfg.format)
		if err != nil {
			m.cfg.log.Warn("computed value failed", "name", c.name, "conversation", job.ConversationID, "error", err)
			continue
		}
		d.Values[c.name] = v
	}
	return d
}

// RenderError reports templates that failed for one job. Map still returns
// the rest of the update with it: failing fields are left out, a failing
// comment template is replaced by the default comment.
type RenderError struct {
	// Fields maps the field ids (as written in the rules) that were left
	// out to their error.
	Fields map[string]error
	// Comment is the sync.template error, when it failed.
	Comment error
}

func (e *RenderError) Error() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		parts = append(parts, fmt.Sprintf("field %s: %v", k, e.Fields[k]))
	}
	if e.Comment != nil {
		parts = append(parts, fmt.Sprintf("comment template: %v", e.Comment))
	}
	return "syncmap: " + strings.Join(parts, "; ")
}

// Map implements cti.FieldMapper. Fields rendering empty are left out
// (an unknown value never clears what an agent set); values and the
// comment are cut to the maximum comment size. The tags are the rule's
// tags, normalized like Zendesk does, and MarkerTag(job.Key). When a
// template fails, the update is still returned with a *RenderError.
func (m *Mapper) Map(_ context.Context, job *cti.SyncJob) (cti.Update, error) {
	rm, ok := m.rules[job.Rule]
	if !ok {
		return cti.Update{}, fmt.Errorf("syncmap: %w: rule %q is not in the mapper's rules", cti.ErrInvalid, job.Rule)
	}
	d := m.Data(job)
	var up cti.Update
	var rerr RenderError
	for _, f := range rm.fields {
		v, err := f.t.Render(d, m.cfg.format)
		if err != nil {
			if rerr.Fields == nil {
				rerr.Fields = map[string]error{}
			}
			rerr.Fields[f.key] = err
			continue
		}
		if strings.TrimSpace(v) == "" {
			continue
		}
		if up.Fields == nil {
			up.Fields = map[string]any{}
		}
		up.Fields[f.key], _ = TruncateBytes(v, m.cfg.maxComment)
	}
	switch rm.rule.Sync.Comment {
	case cti.CommentNone:
	default:
		up.Public = rm.rule.Sync.Comment == cti.CommentPublic
		up.Comment, rerr.Comment = m.comment(rm, d)
	}
	up.Tags = Tags(rm.rule.Sync.Tags, job.Key)
	if rerr.Fields != nil || rerr.Comment != nil {
		return up, &rerr
	}
	return up, nil
}

// Comment renders the comment of job: the rule's sync.template or the
// default comment of its media, cut to the maximum size. It renders even
// when the rule says comment: none (the sink uses it for the title of a
// new ticket's first comment).
func (m *Mapper) Comment(job *cti.SyncJob) (string, error) {
	rm, ok := m.rules[job.Rule]
	if !ok {
		return "", fmt.Errorf("syncmap: %w: rule %q is not in the mapper's rules", cti.ErrInvalid, job.Rule)
	}
	s, err := m.comment(rm, m.Data(job))
	return s, err
}

func (m *Mapper) comment(rm *ruleMap, d *Data) (string, error) {
	var terr error
	if rm.comment != nil {
		s, err := rm.comment.Render(d, m.cfg.format)
		if err == nil {
			s, _ = TruncateBytes(strings.TrimSpace(s), m.cfg.maxComment)
			return s, nil
		}
		terr = err
	}
	t := m.defaults[cmp.Or(d.Kind, "voice")]
	if t == nil {
		t = m.defaults["chat"]
	}
	s, err := t.Render(d, m.cfg.format)
	if err != nil {
		return "", errors.Join(terr, err)
	}
	s, _ = TruncateBytes(strings.TrimSpace(s), m.cfg.maxComment)
	return s, terr
}

// LateMissing returns the late data points job's rule waits for that are
// still empty: the policy's Points, or those the rule's templates name.
func (m *Mapper) LateMissing(job *cti.SyncJob, d *Data) []string {
	points := m.cfg.late.Points
	if points == nil {
		if rm, ok := m.rules[job.Rule]; ok {
			points = rm.late
		}
	}
	return missing(d, points)
}

// missing returns the points among names that apply to d's media and are
// empty in d.
func missing(d *Data, names []string) []string {
	var out []string
	for _, n := range names {
		p, ok := Lookup(n)
		if !ok || !p.Applies(d.Kind) {
			continue
		}
		if pointValue(d, n) == "" {
			out = append(out, n)
		}
	}
	return out
}

// pointValue is the rendered value of a string data point.
func pointValue(d *Data, name string) string {
	switch name {
	case "RecordingURL":
		return d.RecordingURL
	case "Transcript":
		return d.Transcript
	case "Summary":
		return d.Summary
	case "ChatSummary":
		return d.ChatSummary
	case "CallSummary":
		return d.CallSummary
	}
	return ""
}

// MarkerTag is the tag that marks, in Zendesk, that the sync with job key
// key was written: the sink adds it in the same request as the comment
// and checks for it before writing. "ctikit_" and 16 hex digits of the
// key's SHA-256.
func MarkerTag(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "ctikit_" + hex.EncodeToString(sum[:8])
}

// Tags normalizes tags the way Zendesk stores them (lower case, spaces
// become underscores, duplicates and empties removed) and adds
// MarkerTag(key) when key is not empty.
func Tags(tags []string, key string) []string {
	out := make([]string, 0, len(tags)+1)
	for _, t := range tags {
		t = strings.ToLower(strings.Join(strings.Fields(t), "_"))
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if key != "" {
		if mk := MarkerTag(key); !slices.Contains(out, mk) {
			out = append(out, mk)
		}
	}
	return out
}

// TruncateBytes cuts s to at most n bytes on a character boundary, ending
// with TruncatedMarker when cut, and reports whether it cut.
func TruncateBytes(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	total := utf8.RuneCountInString(s)
	marker := fmt.Sprintf(TruncatedMarker, total) // upper bound on its length
	keep := max(n-len(marker), 0)
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	omitted := total - utf8.RuneCountInString(s[:keep])
	return s[:keep] + fmt.Sprintf(TruncatedMarker, omitted), true
}

// DefaultTemplate is the default comment template for a media kind: a
// title, then one "Label: value" line for each data point of that media
// that has a value, then the long texts (notes, AI summary, emails,
// transcript) as sections, the transcript last so that truncation cuts its
// end.
func DefaultTemplate(kind string) string {
	var b strings.Builder
	b.WriteString("Genesys Cloud: {{with .Direction}}{{.}} {{end}}" + kindLabel(kind) + "\n")
	var long []Point
	for _, p := range Catalog {
		if !p.Comment || !p.Applies(kind) {
			continue
		}
		if p.Long {
			long = append(long, p)
			continue
		}
		if p.Name == "WrapupCode" {
			// Agents read the disposition by name; the id shows only
			// when the name is unknown.
			fmt.Fprintf(&b, "{{if not .WrapupName}}{{with .%s}}%s: {{.}}\n{{end}}{{end}}", p.Name, p.Label)
			continue
		}
		fmt.Fprintf(&b, "{{with .%s}}%s: {{.}}\n{{end}}", p.Name, p.Label)
	}
	order := []string{"WrapupNotes", "CallSummary", "ChatSummary", "EmailText", "ReplyText", "Transcript"}
	slices.SortStableFunc(long, func(a, b Point) int {
		return cmp.Compare(slices.Index(order, a.Name), slices.Index(order, b.Name))
	})
	for _, p := range long {
		fmt.Fprintf(&b, "{{with .%s}}\n%s:\n{{.}}\n{{end}}", p.Name, p.Label)
	}
	return b.String()
}

func kindLabel(kind string) string {
	switch kind {
	case "voice":
		return "call"
	case "callback":
		return "callback"
	case "email":
		return "email"
	case "chat":
		return "chat"
	case "webmessaging":
		return "web messaging conversation"
	case "sms":
		return "SMS conversation"
	case "whatsapp":
		return "WhatsApp conversation"
	case "facebook":
		return "Facebook Messenger conversation"
	case "instagram":
		return "Instagram conversation"
	case "twitter":
		return "X (Twitter) conversation"
	case "line":
		return "LINE conversation"
	case "open":
		return "open messaging conversation"
	}
	return "conversation"
}
