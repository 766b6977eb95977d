package cti

import "unsafe"

// Packing the snapshot the engine keeps.
//
// A decoded snapshot holds a few dozen small strings (ids, names,
// addresses, attribute keys and values), each its own allocation, made
// amid the decoder's short-lived garbage. Kept for the life of a
// conversation, they pin whole spans of that garbage's size classes:
// thousands of live conversations then hold far more heap than their
// bytes. pack copies them into one allocation per conversation (the
// arena) and maps the enumerated fields onto their constants, so the kept
// snapshot is a handful of objects.
//
// Strings are immutable, so sharing the arena is invisible to readers; a
// string a collaborator keeps keeps the arena (a few hundred bytes) alive.

// inArena reports whether s is empty or lies in arena.
func inArena(s, arena string) bool {
	if s == "" {
		return true
	}
	if arena == "" {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(arena)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(arena))
}

// eachString calls f on every string of c that pack copies into the arena
// (not the enumerated fields, see internEnums), attribute keys and values
// excepted.
func (c *Conversation) eachString(f func(*string)) {
	f(&c.ID)
	eachRef(&c.Queue, f)
	eachRef(&c.Campaign, f)
	cu := &c.Customer
	f(&cu.Address)
	f(&cu.Phone)
	f(&cu.Email)
	f(&cu.Handle)
	f(&cu.Name)
	for i := range c.Agents {
		l := &c.Agents[i]
		f(&l.ID)
		f(&l.UserID)
		f(&l.Name)
		f(&l.Email)
		eachRef(&l.Queue, f)
		f(&l.DisconnectType)
		if w := l.Wrapup; w != nil {
			f(&w.Code)
			f(&w.Name)
			f(&w.Category)
			f(&w.Notes)
			for j := range w.Tags {
				f(&w.Tags[j])
			}
		}
	}
	for i := range c.Transfers {
		t := &c.Transfers[i]
		eachRef(&t.FromUser, f)
		eachRef(&t.ToQueue, f)
		eachRef(&t.ToUser, f)
		f(&t.Kind)
	}
	f(&c.Links.RecordingURL)
	f(&c.Links.InteractionURL)
	ct := &c.Content
	for _, p := range [...]*string{&ct.EmailSubject, &ct.EmailBody, &ct.EmailText, &ct.ReplySubject,
		&ct.ReplyBody, &ct.ReplyText, &ct.Transcript, &ct.Summary, &ct.SummarySource} {
		f(p)
	}
}

func eachRef(r *Ref, f func(*string)) {
	f(&r.ID)
	f(&r.Name)
}

// internEnums replaces the enumerated fields' values with their constants
// (no heap).
func (c *Conversation) internEnums() {
	c.Media = Media(internConst(string(c.Media), "voice", "callback", "email", "chat", "message"))
	c.Channel = Channel(internConst(string(c.Channel), "sms", "whatsapp", "facebook", "instagram", "twitter",
		"line", "webmessaging", "open"))
	c.Direction = Direction(internConst(string(c.Direction), "inbound", "outbound"))
	for i := range c.Agents {
		l := &c.Agents[i]
		l.State = LegState(internConst(string(l.State), "alerting", "connected", "disconnected"))
		l.ACW = ACWState(internConst(string(l.ACW), "pending", "complete", "skipped", "notApplicable"))
	}
}

func internConst(s string, consts ...string) string {
	for _, k := range consts {
		if s == k {
			return k
		}
	}
	return s
}

// packed reports whether every string pack would copy already lies in
// arena.
func (c *Conversation) packed(arena string) bool {
	ok := true
	c.eachString(func(s *string) {
		if ok && !inArena(*s, arena) {
			ok = false
		}
	})
	for k, v := range c.Attributes {
		if !ok {
			break
		}
		ok = inArena(k, arena) && inArena(v, arena)
	}
	return ok
}

// pack copies c's strings into one new allocation, which it returns (the
// arena), unless they all lie in arena already (then it returns arena).
// The attributes map is rebuilt when repacked. c must be owned by the
// caller.
func (c *Conversation) pack(arena string) string {
	c.internEnums()
	if c.packed(arena) {
		return arena
	}
	n := 0
	c.eachString(func(s *string) { n += len(*s) })
	for k, v := range c.Attributes {
		n += len(k) + len(v)
	}
	if n == 0 {
		return ""
	}
	buf := make([]byte, n)
	all := unsafe.String(&buf[0], n) // buf is written once, each part before it is read
	off := 0
	put := func(v string) string {
		copy(buf[off:], v)
		s := all[off : off+len(v)]
		off += len(v)
		return s
	}
	c.eachString(func(s *string) {
		if *s != "" {
			*s = put(*s)
		}
	})
	if c.Attributes != nil {
		m := make(map[string]string, len(c.Attributes))
		for k, v := range c.Attributes {
			m[put(k)] = put(v)
		}
		c.Attributes = m
	}
	return all
}
