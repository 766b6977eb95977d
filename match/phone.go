package match

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/cxplay/ctikit/cti"
)

// MaxPhoneInput is the longest input Parse looks at, in bytes. Anything
// longer is not a phone number (an ANI or URI is well under 100 bytes) and
// is rejected before any parsing work.
const MaxPhoneInput = 512

// ErrWithheld is returned by Parse for a withheld caller id ("anonymous",
// "restricted", "private", "unavailable", "unknown", "withheld", an
// anonymous SIP URI, or nothing at all).
var ErrWithheld = errors.New("match: caller id withheld")

// Phone is a parsed phone number.
type Phone struct {
	// E164 is the number in E.164 ("+14155551212"), without extension.
	E164 string
	// Extension is the extension, if the input had one ("123").
	Extension string
	// Region is the ISO 3166 region of the number ("US"), "" when unknown
	// (non-geographic numbers, or numbers outside any known range).
	Region string
	// CountryCode is the calling code (1, 33, 44, ...).
	CountryCode int
	// Valid reports whether the number is in an assigned range of its
	// country. A number that is only possible (the right length) parses
	// with Valid false: numbering plans change faster than metadata.
	Valid bool
	// Input is the cleaned input: URI scheme, SIP host and parameters
	// removed, spaces trimmed.
	Input string

	num *phonenumbers.PhoneNumber
	// memo is set on a Phone from a Normalizer's memory: Formats keeps
	// its answer there.
	memo *phoneEntry
}

// Normalizer parses and normalizes phone numbers with a default region for
// numbers written in national format. The zero value has no default
// region: only numbers in international form (+..., or digits that are
// valid with a leading +) parse. It is safe for concurrent use.
//
// A Normalizer from NewNormalizer remembers its last several hundred answers
// (libphonenumber parsing costs tens of microseconds, more than decoding
// a Genesys frame): share one between the event source and the matcher,
// and the matcher's parse of a number the source normalized, as E.164, is
// a lookup. The zero value remembers nothing.
type Normalizer struct {
	region string
	memo   *phoneMemo
}

// NewNormalizer returns a normalizer for numbers dialled in region (an ISO
// 3166 code such as "US", "FR", "GB"; case-insensitive). An empty region
// means none: national formats do not parse.
func NewNormalizer(region string) (*Normalizer, error) {
	region = strings.ToUpper(strings.TrimSpace(region))
	if region != "" && !phonenumbers.GetSupportedRegions()[region] {
		return nil, fmt.Errorf("%w: unknown phone region %q: want an ISO 3166 code such as US, FR or GB", cti.ErrInvalid, region)
	}
	return &Normalizer{region: region, memo: newPhoneMemo(phoneMemoSize)}, nil
}

// Region returns the default region ("" for none).
func (n *Normalizer) Region() string {
	if n == nil {
		return ""
	}
	return n.region
}

// Normalize returns s in E.164 when it parses as a phone number, "" when it
// is a withheld caller id or longer than MaxPhoneInput, and otherwise the
// cleaned input (a SIP user name, a short code). It never panics. Its
// signature fits a source's phone normalizer hook (func(string) string).
func (n *Normalizer) Normalize(s string) string {
	p, err := n.Parse(s)
	switch {
	case err == nil:
		return p.E164
	case errors.Is(err, ErrWithheld), len(s) > MaxPhoneInput:
		return ""
	default:
		return p.Input
	}
}

// Parse parses a phone number from an ANI, a national or international
// number with any punctuation, a tel: URI (RFC 3966, with ;ext= and
// ;phone-context=) or a sip:/sips: URI whose user part is a number. On
// failure it returns the cleaned input in Phone.Input with an error
// wrapping ErrWithheld or cti.ErrInvalid. It never panics.
func (n *Normalizer) Parse(s string) (p Phone, err error) {
	if n == nil || n.memo == nil || len(s) > MaxPhoneInput {
		p, _, err = n.parse(s)
		return p, err
	}
	if e := n.memo.get(s); e != nil {
		return e.phone(), e.err
	}
	p, alias, err := n.parse(s)
	e := &phoneEntry{p: p, err: err}
	n.memo.put(s, e)
	if alias.E164 != "" && alias.E164 != s {
		// The number as the source hands it on (E.164) parses to this;
		// fuzzed against a fresh parse by FuzzNormalize.
		n.memo.put(alias.E164, &phoneEntry{p: alias})
	}
	return e.phone(), err
}

// parse is Parse without the memory. alias is what parsing p.E164 gives
// (without parsing it again), or zero when that is not known.
func (n *Normalizer) parse(s string) (p, alias Phone, err error) {
	if len(s) > MaxPhoneInput {
		return Phone{}, Phone{}, fmt.Errorf("%w: phone input is %d bytes, more than %d", cti.ErrInvalid, len(s), MaxPhoneInput)
	}
	in, ctxPrefix := clean(s)
	p.Input = in
	if withheld(in) {
		return p, Phone{}, ErrWithheld
	}
	defer func() {
		// Belt and braces: a parser bug must not take the process down.
		if r := recover(); r != nil {
			p, alias, err = Phone{Input: in}, Phone{}, fmt.Errorf("%w: cannot parse %q as a phone number", cti.ErrInvalid, in)
		}
	}()
	raw := in
	if ctxPrefix != "" && !strings.HasPrefix(raw, "+") {
		raw = ctxPrefix + raw
	}
	var cands []*phonenumbers.PhoneNumber
	if num, err := phonenumbers.Parse(raw, n.Region()); err == nil {
		cands = append(cands, num)
	}
	// WhatsApp and some carriers send international numbers without the
	// plus: 33612345678. Try that reading too; first when the digits
	// begin with the home country's code in a country that dials a
	// national prefix: there 4917612345678 is a German mobile without its
	// plus, not a national number without its 0 (which would read as a
	// Leer landline, 0491 7612345678).
	if d := digitsOnly(raw); d != "" && d[0] != '0' && !strings.HasPrefix(raw, "+") && len(d) >= 8 {
		if num, err := phonenumbers.Parse("+"+raw, ""); err == nil {
			cands = append(cands, num)
			if r := n.Region(); len(cands) == 2 && r != "" && phonenumbers.GetNddPrefixForRegion(r, true) != "" &&
				strings.HasPrefix(d, strconv.Itoa(phonenumbers.GetCountryCodeForRegion(r))) {
				cands[0], cands[1] = cands[1], cands[0]
			}
		}
	}
	var (
		best    *phonenumbers.PhoneNumber
		region  string
		valid   bool
		regions = make([]string, len(cands)) // of cands, as looked up below
	)
	for i, c := range cands { // valid first, in order
		// phonenumbers.IsValidNumber, keeping the region it looks up (the
		// costliest step for a shared country code such as +1: an invalid
		// +1 number is tried against every NANP region, so it is looked
		// up once).
		regions[i] = phonenumbers.GetRegionCodeForNumber(c)
		if phonenumbers.IsValidNumberForRegion(c, regions[i]) {
			best, region, valid = c, regions[i], true
			break
		}
	}
	if best == nil {
		for i, c := range cands {
			if phonenumbers.IsPossibleNumber(c) {
				best, region = c, regions[i]
				break
			}
		}
	}
	if best == nil {
		return p, Phone{}, fmt.Errorf("%w: %q is not a phone number (default region %q)", cti.ErrInvalid, in, n.Region())
	}
	e164 := format(best, phonenumbers.E164)
	again, err := phonenumbers.Parse(e164, "")
	if err != nil || format(again, phonenumbers.E164) != e164 {
		// Odd inputs (leading zeros after a country code) can give an
		// E.164 that reads back as another number: not a real number.
		return p, Phone{}, fmt.Errorf("%w: %q is not a phone number (default region %q)", cti.ErrInvalid, in, n.Region())
	}
	p.num = best
	p.Extension = best.GetExtension()
	p.CountryCode = int(best.GetCountryCode())
	p.Region = region
	p.Valid = valid
	p.E164 = e164
	if p.Extension == "" {
		// again has best's number fields, so the same region and
		// validity: it is what Parse(e164) would find.
		alias = Phone{E164: e164, Region: region, CountryCode: p.CountryCode, Valid: valid, Input: e164, num: again}
	}
	return p, alias, nil
}

// format formats num without its extension.
func format(num *phonenumbers.PhoneNumber, f phonenumbers.PhoneNumberFormat) string {
	if num.GetExtension() != "" {
		num = &phonenumbers.PhoneNumber{
			CountryCode:          num.CountryCode,
			NationalNumber:       num.NationalNumber,
			ItalianLeadingZero:   num.ItalianLeadingZero,
			NumberOfLeadingZeros: num.NumberOfLeadingZeros,
		}
	}
	return phonenumbers.Format(num, f)
}

// Formats returns the strings a Zendesk account plausibly stores this
// number as, most likely first, without duplicates: E.164, international
// ("+1 415-555-1212"), national ("(415) 555-1212"), national digits
// ("4155551212"), E.164 without the plus ("14155551212"), the country code
// before the national format ("+1 (415) 555-1212"), the national groups
// with dashes and dots ("415-555-1212", "415.555.1212"), the international
// groups with spaces and with dashes ("+1 415 555 1212",
// "+1-415-555-1212"), the national prefix in parentheses where there is
// one ("+44 (0)20 7946 0958"), in North America the trunk 1 before the
// national number ("1-415-555-1212", "1 (415) 555-1212"), and the input
// as received. Zendesk matches phone numbers as exact strings, so each is a
// separate search term. A zero Phone gives nil.
func (p Phone) Formats() []string {
	if e := p.memo; e != nil && e.p.same(p) {
		e.once.Do(func() { e.formats = e.p.formats() })
		return slices.Clone(e.formats)
	}
	return p.formats()
}

func (p Phone) formats() []string {
	if p.num == nil {
		return nil
	}
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !containsString(out, s) {
			out = append(out, s)
		}
	}
	intl := format(p.num, phonenumbers.INTERNATIONAL)
	nat := format(p.num, phonenumbers.NATIONAL)
	add(p.E164)
	add(intl)
	add(nat)
	add(digitsOnly(nat))
	add(strings.TrimPrefix(p.E164, "+"))
	code := strconv.Itoa(p.CountryCode)
	cc := "+" + code + " "
	if rest, ok := strings.CutPrefix(intl, cc); ok {
		if nat != digitsOnly(nat) {
			add(cc + nat)
		}
		groups := strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == '-' })
		if len(groups) > 1 {
			prefix := ""
			if nd := digitsOnly(nat); strings.HasSuffix(nd, strings.Join(groups, "")) {
				prefix = strings.TrimSuffix(nd, strings.Join(groups, "")) // national prefix, e.g. "0"
			}
			add(prefix + strings.Join(groups, "-"))
			add(prefix + strings.Join(groups, "."))
			add(cc + strings.Join(groups, " "))               // +1 415 555 1212
			add("+" + code + "-" + strings.Join(groups, "-")) // +1-415-555-1212
			if prefix != "" {
				add(cc + "(" + prefix + ")" + strings.Join(groups, " ")) // +44 (0)20 7946 0958
			}
			if p.CountryCode == 1 {
				// North America dials its country code as the trunk prefix.
				add(code + "-" + strings.Join(groups, "-")) // 1-415-555-1212
				if nat != digitsOnly(nat) {
					add(code + " " + nat) // 1 (415) 555-1212
				}
			}
		}
	}
	if p.Input != "" && utf8.ValidString(p.Input) && len(p.Input) <= 64 && !strings.ContainsAny(p.Input, "\"\\") {
		add(p.Input)
	}
	return out
}

// clean strips a tel:/sip:/sips: scheme, angle brackets, a display name, the
// SIP host and URI parameters; it returns the cleaned number and the
// phone-context of a tel: URI, if any. ";ext=" is kept in a form the parser
// understands.
func clean(s string) (number, phoneContext string) {
	s = sanitize(s)
	if i := strings.IndexByte(s, '<'); i >= 0 { // "Jane" <sip:+1415...@host>
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i+1 : i+j]
		}
	}
	lower := strings.ToLower(s)
	isURI := false
	for _, scheme := range []string{"tel:", "sip:", "sips:"} {
		if strings.HasPrefix(lower, scheme) {
			s, isURI = s[len(scheme):], true
			if scheme != "tel:" {
				if at := strings.LastIndexByte(s, '@'); at >= 0 {
					s = s[:at]
				}
			}
			break
		}
	}
	if !isURI {
		return strings.TrimSpace(s), ""
	}
	if u, err := url.PathUnescape(s); err == nil {
		s = sanitize(u)
	}
	parts := strings.Split(s, ";")
	number = strings.TrimSpace(parts[0])
	for _, prm := range parts[1:] {
		k, v, _ := strings.Cut(prm, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "ext":
			if v = strings.TrimSpace(v); v != "" {
				number += " ext. " + v
			}
		case "phone-context":
			if v = strings.TrimSpace(v); strings.HasPrefix(v, "+") {
				phoneContext = v
			}
		}
	}
	return number, phoneContext
}

// sanitize drops invalid UTF-8 and control characters and trims spaces.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

var withheldWords = map[string]bool{
	"": true, "anonymous": true, "restricted": true, "private": true, "unavailable": true,
	"unknown": true, "withheld": true, "blocked": true, "anonymous.invalid": true,
}

func withheld(s string) bool {
	return withheldWords[strings.ToLower(strings.TrimSpace(s))]
}

func digitsOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// phoneMemoSize bounds a Normalizer's memory, in inputs per generation
// (about 1 KB each with their formats; a number the source normalized
// takes two, its input and its E.164). It is there for the few seconds
// between a conversation's first update and its ring: at 4,096, figure
// 4's heap in use grew by 450 B per conversation at 10,000 live ones
// (4.2 KB, over its 4 KiB target; BENCHMARKS.md); at 512 it is 3.75 KB.
const phoneMemoSize = 512

// phoneMemo remembers Parse's answers: two generations of at most n
// entries each; an entry found in the old one moves to the new one, and
// when the new one is full the old one is dropped. The live
// conversations' numbers, looked up again and again, stay.
type phoneMemo struct {
	n        int
	mu       sync.Mutex
	cur, old map[string]*phoneEntry
}

type phoneEntry struct {
	p   Phone
	err error

	once    sync.Once
	formats []string
}

func newPhoneMemo(n int) *phoneMemo {
	return &phoneMemo{n: n, cur: make(map[string]*phoneEntry, 64)}
}

func (m *phoneMemo) get(s string) *phoneEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.cur[s]; ok {
		return e
	}
	if e, ok := m.old[s]; ok {
		m.putLocked(s, e)
		return e
	}
	return nil
}

func (m *phoneMemo) put(s string, e *phoneEntry) {
	m.mu.Lock()
	m.putLocked(s, e)
	m.mu.Unlock()
}

func (m *phoneMemo) putLocked(s string, e *phoneEntry) {
	if len(m.cur) >= m.n {
		m.old, m.cur = m.cur, make(map[string]*phoneEntry, m.n)
	}
	m.cur[s] = e
}

// phone returns the entry's Phone, carrying the entry for Formats.
func (e *phoneEntry) phone() Phone {
	p := e.p
	if p.num != nil {
		p.memo = e
	}
	return p
}

// same reports whether p has q's exported fields and number: Formats'
// memory holds only for an unchanged copy.
func (p Phone) same(q Phone) bool {
	return p.num == q.num && p.E164 == q.E164 && p.Extension == q.Extension && p.Region == q.Region &&
		p.CountryCode == q.CountryCode && p.Valid == q.Valid && p.Input == q.Input
}
