package genesys

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A hand-written decoder for the lean wire structs. encoding/json walks
// every byte twice through a state machine (validation, then decoding
// with reflection); this walks once with plain loops, skips the fields
// ctikit does not use, and allocates only what it keeps. It accepts and
// rejects exactly what encoding/json does for these structs (a
// differential fuzz test holds it to that), except that keys must match
// their exact case: Genesys never varies it.

var errSyntax = errors.New("genesys: invalid JSON")

type lexer struct {
	b   []byte
	i   int
	err error
}

func (l *lexer) fail(err error) {
	if l.err == nil {
		l.err = err
	}
	l.i = len(l.b)
}

func (l *lexer) syntax() { l.fail(errSyntax) }

func (l *lexer) ws() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\n', '\r', '\t':
			l.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (l *lexer) peek() byte {
	l.ws()
	if l.i >= len(l.b) {
		return 0
	}
	return l.b[l.i]
}

func (l *lexer) lit(s string) bool {
	if len(l.b)-l.i >= len(s) && string(l.b[l.i:l.i+len(s)]) == s {
		l.i += len(s)
		return true
	}
	l.syntax()
	return false
}

// null consumes a null and reports whether there was one.
func (l *lexer) null() bool {
	if l.peek() == 'n' {
		return l.lit("null")
	}
	return false
}

// rawString scans a string at l.i (the opening quote) and returns its
// content without the quotes, and whether it has escapes or bytes that
// need care (invalid UTF-8).
func (l *lexer) rawString() (raw []byte, plain bool) {
	if l.peek() != '"' {
		l.syntax()
		return nil, false
	}
	start := l.i + 1
	plain = true
	for j := start; j < len(l.b); j++ {
		switch c := l.b[j]; {
		case c == '"':
			l.i = j + 1
			return l.b[start:j], plain
		case c == '\\':
			plain = false
			j++
			if j >= len(l.b) {
				l.syntax()
				return nil, false
			}
			switch l.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(l.b) {
					l.syntax()
					return nil, false
				}
				for k := j + 1; k <= j+4; k++ {
					if !isHex(l.b[k]) {
						l.syntax()
						return nil, false
					}
				}
				j += 4
			default:
				l.syntax()
				return nil, false
			}
		case c < 0x20:
			l.syntax()
			return nil, false
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	l.syntax()
	return nil, false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// str reads a string value (null gives "").
func (l *lexer) str() string {
	if l.null() {
		return ""
	}
	if l.peek() != '"' {
		l.fail(errType)
		return ""
	}
	raw, plain := l.rawString()
	if plain {
		return string(raw)
	}
	if !hasBackslash(raw) && utf8.Valid(raw) {
		return string(raw)
	}
	return unquote(raw)
}

var errType = errors.New("genesys: unexpected JSON type")

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// unquote decodes escapes and replaces invalid UTF-8 as encoding/json does.
func unquote(s []byte) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			i++
			switch s[i] {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(s[i+1 : i+5])
				i += 5 // past the four hex digits
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, hex4(s[i+2:i+6])); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default: // " \ /
				out = append(out, s[i])
			}
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, s[i:i+n]...)
			}
			i += n
		}
	}
	return string(out)
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// number scans a JSON number and returns its text.
func (l *lexer) number() []byte {
	start := l.i
	j := l.i
	if j < len(l.b) && l.b[j] == '-' {
		j++
	}
	switch {
	case j < len(l.b) && l.b[j] == '0':
		j++
	case j < len(l.b) && l.b[j] >= '1' && l.b[j] <= '9':
		for j < len(l.b) && l.b[j] >= '0' && l.b[j] <= '9' {
			j++
		}
	default:
		l.syntax()
		return nil
	}
	if j < len(l.b) && l.b[j] == '.' {
		j++
		if j >= len(l.b) || l.b[j] < '0' || l.b[j] > '9' {
			l.syntax()
			return nil
		}
		for j < len(l.b) && l.b[j] >= '0' && l.b[j] <= '9' {
			j++
		}
	}
	if j < len(l.b) && (l.b[j] == 'e' || l.b[j] == 'E') {
		j++
		if j < len(l.b) && (l.b[j] == '+' || l.b[j] == '-') {
			j++
		}
		if j >= len(l.b) || l.b[j] < '0' || l.b[j] > '9' {
			l.syntax()
			return nil
		}
		for j < len(l.b) && l.b[j] >= '0' && l.b[j] <= '9' {
			j++
		}
	}
	l.i = j
	return l.b[start:j]
}

// skip consumes any value, validating it.
func (l *lexer) skip() {
	switch l.peek() {
	case '{':
		l.object(func([]byte) { l.skip() })
	case '[':
		l.array(func() { l.skip() })
	case '"':
		l.rawString()
	case 't':
		l.lit("true")
	case 'f':
		l.lit("false")
	case 'n':
		l.lit("null")
	default:
		l.number()
	}
}

// object calls member for each key; member must consume the value.
func (l *lexer) object(member func(key []byte)) {
	if l.peek() != '{' {
		l.syntax()
		return
	}
	l.i++
	if l.peek() == '}' {
		l.i++
		return
	}
	for l.err == nil {
		raw, plain := l.rawString()
		if l.err != nil {
			return
		}
		if l.peek() != ':' {
			l.syntax()
			return
		}
		l.i++
		if !plain {
			raw = []byte(unquote(raw)) // a key with escapes: compare its decoded form
		}
		member(raw)
		switch l.peek() {
		case ',':
			l.i++
		case '}':
			l.i++
			return
		default:
			l.syntax()
			return
		}
	}
}

// array calls elem for each element; elem must consume it.
func (l *lexer) array(elem func()) {
	if l.peek() != '[' {
		l.syntax()
		return
	}
	l.i++
	if l.peek() == ']' {
		l.i++
		return
	}
	for l.err == nil {
		elem()
		switch l.peek() {
		case ',':
			l.i++
		case ']':
			l.i++
			return
		default:
			l.syntax()
			return
		}
	}
}

// objectOrNull checks the next value is an object (true), null (consumed,
// false) or else fails with a type error (after validating it).
func (l *lexer) objectOrNull() bool {
	switch l.peek() {
	case '{':
		return true
	case 'n':
		l.lit("null")
		return false
	}
	l.typeMismatch()
	return false
}

func (l *lexer) arrayOrNull() bool {
	switch l.peek() {
	case '[':
		return true
	case 'n':
		l.lit("null")
		return false
	}
	l.typeMismatch()
	return false
}

// typeMismatch validates the value and records a type error, as
// encoding/json reports an UnmarshalTypeError after checking the syntax.
func (l *lexer) typeMismatch() {
	l.skip()
	if l.err == nil {
		l.err = errType
	}
}

func (l *lexer) boolean() bool {
	switch l.peek() {
	case 't':
		return l.lit("true")
	case 'f':
		l.lit("false")
		return false
	case 'n':
		l.lit("null")
		return false
	}
	l.typeMismatch()
	return false
}

func (l *lexer) integer() int {
	switch c := l.peek(); {
	case c == 'n':
		l.lit("null")
		return 0
	case c == '-' || c >= '0' && c <= '9':
		n := l.number()
		if l.err != nil {
			return 0
		}
		v, err := strconv.ParseInt(string(n), 10, 0)
		if err != nil {
			l.err = errType
			return 0
		}
		return int(v)
	}
	l.typeMismatch()
	return 0
}

// timestamp reads a wtime (any value is accepted; only a string counts).
func (l *lexer) timestamp(t *wtime) {
	if l.peek() != '"' {
		l.skip()
		return
	}
	raw, _ := l.rawString()
	if l.err == nil {
		t.parse(raw)
	}
}

// arrayInto decodes an array into *dst the way encoding/json does: null
// makes it nil; elements are decoded into the existing ones (a repeated
// key), then it is cut to the new length.
func arrayInto[T any](l *lexer, dst *[]T, elem func(*T)) {
	if !l.arrayOrNull() {
		*dst = nil
		return
	}
	s, n := *dst, 0
	l.array(func() {
		if n == len(s) {
			var zero T
			s = append(s, zero)
		}
		elem(&s[n])
		n++
	})
	if s == nil {
		s = []T{}
	}
	*dst = s[:n]
}

func (l *lexer) strings(dst *[]string) {
	arrayInto(l, dst, func(v *string) {
		if !l.null() {
			*v = l.str()
		}
	})
}

func (l *lexer) strMap(dst *map[string]string) {
	if !l.objectOrNull() {
		*dst = nil
		return
	}
	if *dst == nil {
		*dst = map[string]string{}
	}
	m := *dst
	l.object(func(k []byte) { m[string(k)] = l.str() })
}

// ptrObject decodes an object into *dst as encoding/json does for a
// pointer field: null makes it nil, else it is allocated if nil and each
// member is handed to member.
func ptrObject[T any](l *lexer, dst **T, member func(v *T, key []byte)) {
	if !l.objectOrNull() {
		*dst = nil
		return
	}
	if *dst == nil {
		*dst = new(T)
	}
	v := *dst
	l.object(func(k []byte) { member(v, k) })
}

// stringField reads the member's value into dst when its key is name, and
// skips it otherwise.
func (l *lexer) stringField(key []byte, name string, dst *string) {
	if string(key) == name {
		*dst = l.str()
		return
	}
	l.skip()
}

// --- the wire structs ---

// decodeConversation parses a conversation body into w.
func decodeConversation(b []byte, w *wireConversation) error {
	l := &lexer{b: b}
	if !l.null() {
		if l.objectOrNull() {
			l.conversation(w)
		}
	}
	if l.err == nil {
		// Trailing data, a NUL byte included (peek's 0 also means the end).
		if l.ws(); l.i < len(l.b) {
			l.syntax()
		}
	}
	return l.err
}

func (l *lexer) conversation(w *wireConversation) {
	l.object(func(k []byte) {
		switch string(k) {
		case "id":
			w.ID = l.str()
		case "startTime":
			l.timestamp(&w.StartTime)
		case "endTime":
			l.timestamp(&w.EndTime)
		case "participants":
			arrayInto(l, &w.Participants, func(p *wireParticipant) {
				if l.objectOrNull() {
					l.participant(p)
				}
			})
		default:
			l.skip()
		}
	})
}

func (l *lexer) comms(dst *[]wireComm) {
	arrayInto(l, dst, func(c *wireComm) {
		if l.objectOrNull() {
			l.comm(c)
		}
	})
}

func (l *lexer) participant(p *wireParticipant) {
	l.object(func(k []byte) {
		switch string(k) {
		case "id":
			p.ID = l.str()
		case "startTime":
			l.timestamp(&p.StartTime)
		case "connectedTime":
			l.timestamp(&p.ConnectedTime)
		case "endTime":
			l.timestamp(&p.EndTime)
		case "userId":
			p.UserID = l.str()
		case "name":
			p.Name = l.str()
		case "queueId":
			p.QueueID = l.str()
		case "queueName":
			p.QueueName = l.str()
		case "purpose":
			p.Purpose = l.str()
		case "address":
			p.Address = l.str()
		case "ani":
			p.Ani = l.str()
		case "aniName":
			p.AniName = l.str()
		case "dnis":
			p.Dnis = l.str()
		case "wrapupRequired":
			p.WrapupRequired = l.boolean()
		case "wrapupExpected":
			p.WrapupExpected = l.boolean()
		case "monitoredParticipantId":
			p.MonitoredParticipantID = l.str()
		case "coachedParticipantId":
			p.CoachedParticipantID = l.str()
		case "wrapup":
			l.wrapup(&p.Wrapup)
		case "conversationRoutingData":
			ptrObject(l, &p.RoutingData, func(rd *wireRoutingData, k []byte) {
				if string(k) != "queue" {
					l.skip()
					return
				}
				if l.objectOrNull() {
					l.object(func(k []byte) { l.stringField(k, "id", &rd.Queue.ID) })
				}
			})
		case "attributes":
			l.strMap(&p.Attributes)
		case "calls":
			l.comms(&p.Calls)
		case "callbacks":
			l.comms(&p.Callbacks)
		case "chats":
			l.comms(&p.Chats)
		case "emails":
			l.comms(&p.Emails)
		case "messages":
			l.comms(&p.Messages)
		case "socialExpressions":
			l.comms(&p.SocialExpressions)
		default:
			l.skip()
		}
	})
}

func (l *lexer) wrapup(dst **wireWrapup) {
	ptrObject(l, dst, func(w *wireWrapup, k []byte) {
		switch string(k) {
		case "code":
			w.Code = l.str()
		case "name":
			w.Name = l.str()
		case "notes":
			w.Notes = l.str()
		case "tags":
			l.strings(&w.Tags)
		case "durationSeconds":
			w.DurationSeconds = l.integer()
		case "endTime":
			l.timestamp(&w.EndTime)
		default:
			l.skip()
		}
	})
}

// address reads a wireAddress: an object or, like its UnmarshalJSON, a
// plain string.
func (l *lexer) address(dst **wireAddress) {
	switch l.peek() {
	case 'n':
		l.lit("null")
		*dst = nil
		return
	case '"':
		if *dst == nil {
			*dst = &wireAddress{}
		}
		(*dst).AddressNormalized = l.str()
		return
	case '{':
	default:
		l.typeMismatch()
		return
	}
	if *dst == nil {
		*dst = &wireAddress{}
	}
	a := *dst
	l.object(func(k []byte) {
		switch string(k) {
		case "name":
			a.Name = l.str()
		case "addressNormalized":
			a.AddressNormalized = l.str()
		case "addressRaw":
			a.AddressRaw = l.str()
		case "addressDisplayable":
			a.AddressDisplayable = l.str()
		default:
			l.skip()
		}
	})
}

func (l *lexer) comm(c *wireComm) {
	l.object(func(k []byte) {
		switch string(k) {
		case "id":
			c.ID = l.str()
		case "state":
			c.State = l.str()
		case "direction":
			c.Direction = l.str()
		case "disconnectType":
			c.DisconnectType = l.str()
		case "startAlertingTime":
			l.timestamp(&c.StartAlertingTime)
		case "connectedTime":
			l.timestamp(&c.ConnectedTime)
		case "disconnectedTime":
			l.timestamp(&c.DisconnectedTime)
		case "self":
			l.address(&c.Self)
		case "other":
			l.address(&c.Other)
		case "fromAddress":
			l.address(&c.FromAddress)
		case "toAddress":
			l.address(&c.ToAddress)
		case "type":
			c.Type = l.str()
		case "messageType":
			c.MessageType = l.str()
		case "subject":
			c.Subject = l.str()
		case "callbackNumbers":
			l.strings(&c.CallbackNumbers)
		case "callbackUserName":
			c.CallbackUserName = l.str()
		case "dialerPreview":
			ptrObject(l, &c.DialerPreview, func(d *wireDialer, k []byte) { l.stringField(k, "campaignId", &d.CampaignID) })
		case "socialMediaHub":
			c.SocialMediaHub = l.str()
		case "socialUserName":
			c.SocialUserName = l.str()
		case "wrapup":
			l.wrapup(&c.Wrapup)
		case "afterCallWork":
			ptrObject(l, &c.AfterCallWork, func(a *wireACW, k []byte) { l.stringField(k, "state", &a.State) })
		case "afterCallWorkRequired":
			c.AfterCallWorkRequired = l.boolean()
		default:
			l.skip()
		}
	})
}
