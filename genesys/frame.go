package genesys

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/cxplay/ctikit/cti"
)

// Notification topics and system messages.
const (
	topicHeartbeat     = "channel.metadata"
	topicSocketClosing = "v2.system.socket_closing"
	topicNoLonger      = "v2.system.no_longer_subscribed"
	topicTokenRevoked  = "v2.system.token_revoked"
	heartbeatMessage   = "WebSocket Heartbeat"
)

// UserTopic is the notification topic of a user's conversations.
func UserTopic(userID string) string { return "v2.users." + userID + ".conversations" }

// QueueTopic is the notification topic of a queue's conversations.
func QueueTopic(queueID string) string { return "v2.routing.queues." + queueID + ".conversations" }

// frameKind classifies a notification topic.
type frameKind uint8

const (
	kindUnknown frameKind = iota
	kindConversation
	kindHeartbeat
	kindSocketClosing
	kindNoLongerSubscribed
	kindTokenRevoked
	kindOtherSystem
)

func classify(topic []byte) frameKind {
	switch {
	case bytes.HasSuffix(topic, []byte(".conversations")) &&
		(bytes.HasPrefix(topic, []byte("v2.users.")) || bytes.HasPrefix(topic, []byte("v2.routing.queues."))):
		return kindConversation
	case string(topic) == topicHeartbeat:
		return kindHeartbeat
	case string(topic) == topicSocketClosing:
		return kindSocketClosing
	case bytes.HasPrefix(topic, []byte(topicNoLonger)):
		return kindNoLongerSubscribed
	case bytes.HasPrefix(topic, []byte(topicTokenRevoked)):
		return kindTokenRevoked
	case bytes.HasPrefix(topic, []byte("v2.system.")):
		return kindOtherSystem
	}
	return kindUnknown
}

var (
	keyTopic = []byte(`"topicName"`)
	keyBody  = []byte(`"eventBody"`)
	keyMeta  = []byte(`"metadata"`)
)

// errFrame is a frame that is not a JSON notification.
var errFrame = errors.New("genesys: malformed notification frame")

// splitFrame finds the topic name and the raw eventBody of a notification
// frame ({"topicName":..., "version":..., "eventBody":{...},
// "metadata":{...}}) without decoding it: a few byte searches, no
// allocation. The body is the eventBody object exactly as sent, so two
// frames carrying the same event on different topics yield identical
// bodies.
//
// exact reports that body is exactly the eventBody (the frame has the
// shape Genesys sends, metadata last). When it is false, body is still a
// fine key for recognising duplicates (it runs from the eventBody to the
// end of the frame) but must not be decoded: use eventBody. A frame that
// is not a notification at all gives errFrame.
func splitFrame(b []byte) (topic, body []byte, exact bool, err error) {
	if t, bd, ex, ok := fastSplit(b); ok {
		return t, bd, ex, nil
	}
	t, bd, err := slowSplit(b)
	return t, bd, true, err
}

func slowSplit(b []byte) (topic, body []byte, err error) {
	var f struct {
		TopicName string          `json:"topicName"`
		EventBody json.RawMessage `json:"eventBody"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.TopicName == "" {
		return nil, nil, errFrame
	}
	return []byte(f.TopicName), f.EventBody, nil
}

// frameConversation decodes the conversation in body, the eventBody
// splitFrame found in frame. The fast split takes what lies between
// eventBody and metadata for the body: should another member sit there
// (Genesys sends none), the body does not decode, and is split again
// properly.
func (d *Decoder) frameConversation(frame, body []byte, at time.Time) (*cti.Conversation, error) {
	c, err := d.Conversation(body, at)
	if err == nil || errors.Is(err, ErrUnknownMedia) {
		return c, err
	}
	if _, bd, serr := slowSplit(frame); serr == nil && !bytes.Equal(bd, body) {
		if c, serr := d.Conversation(bd, at); serr == nil {
			return c, nil
		}
	}
	return nil, err
}

// eventBody returns the exact eventBody of a frame.
func eventBody(frame, body []byte, exact bool) ([]byte, error) {
	if exact {
		return body, nil
	}
	_, bd, err := slowSplit(frame)
	return bd, err
}

func fastSplit(b []byte) (topic, body []byte, exact, ok bool) {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, nil, false, false
	}
	i := bytes.Index(b, keyBody)
	if i < 0 {
		return nil, nil, false, false
	}
	// The eventBody key must be at the top level: no object or array opens
	// before it (topicName and version are plain strings).
	if bytes.IndexAny(b[1:i], "{[") >= 0 {
		return nil, nil, false, false
	}
	ti := bytes.Index(b[:i], keyTopic)
	if ti < 0 {
		return nil, nil, false, false
	}
	topic, ok = stringValue(b[ti+len(keyTopic) : i])
	if !ok {
		return nil, nil, false, false
	}
	s := skipColon(b, i+len(keyBody))
	if s < 0 || b[s] != '{' {
		return nil, nil, false, false
	}
	end := len(b) - 1 // the envelope's closing brace
	if m := lastKey(b, s, keyMeta); m > s {
		if e, ok := metadataTail(b, m); ok {
			end, exact = e, true
		}
	}
	body = bytes.TrimSpace(b[s:end])
	if len(body) < 2 || body[len(body)-1] != '}' {
		return nil, nil, false, false
	}
	return topic, body, exact, true
}

// lastKey finds the last occurrence of key after index from, scanning back
// from the end (quick when, like "metadata", it sits near the end).
func lastKey(b []byte, from int, key []byte) int {
	for i := len(b) - len(key); i > from; i-- {
		if b[i] == '"' && string(b[i:i+len(key)]) == string(key) {
			return i
		}
	}
	return -1
}

// stringValue reads `: "value"` (a JSON string of plain printable ASCII).
func stringValue(b []byte) ([]byte, bool) {
	j := skipColon(b, 0)
	if j < 0 || b[j] != '"' {
		return nil, false
	}
	k := bytes.IndexByte(b[j+1:], '"')
	if k < 0 {
		return nil, false
	}
	v := b[j+1 : j+1+k]
	for _, c := range v {
		// Escapes, control bytes and non-ASCII (which encoding/json would
		// unescape, reject or replace when invalid UTF-8) take the slow
		// path; topic names are plain ASCII.
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return nil, false
		}
	}
	return v, true
}

// skipColon skips spaces, a colon and spaces from i; -1 if not there.
func skipColon(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	i++
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i >= len(b) {
		return -1
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// metadataTail checks that the "metadata" key at m is the envelope's last
// member (`, "metadata": {...} }` to the end) and returns the index of the
// comma before it.
func metadataTail(b []byte, m int) (int, bool) {
	c := m - 1
	for c > 0 && isSpace(b[c]) {
		c--
	}
	if c <= 0 || b[c] != ',' {
		return 0, false
	}
	v := skipColon(b, m+len(keyMeta))
	if v < 0 {
		return 0, false
	}
	e, ok := valueEnd(b, v)
	if !ok {
		return 0, false
	}
	rest := bytes.TrimSpace(b[e:])
	if len(rest) != 1 || rest[0] != '}' {
		return 0, false
	}
	return c, true
}

// valueEnd returns the index just past the JSON value starting at i (an
// object, array, string or literal), scanning strings properly.
func valueEnd(b []byte, i int) (int, bool) {
	switch b[i] {
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				k, ok := stringEnd(b, j)
				if !ok {
					return 0, false
				}
				j = k - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	case '"':
		return stringEnd(b, i)
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && !isSpace(b[j]) {
			j++
		}
		return j, j > i
	}
}

func stringEnd(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// recentSet remembers the hashes of the last N event bodies, to drop an
// exact duplicate (the same conversation update on the queue topic and the
// user topic, or on two channels while one replaces the other) without
// decoding it. The hash is XXH64 of the body plus its length: ~18 GB/s,
// a 10 KB frame well under a microsecond with the split and the lookup
// (two hardware CRC-32s, used before, took ~0.8 µs for 10 KB alone on AMD
// EPYC; hash/maphash ~1.05 µs). Safe for concurrent use.
type recentSet struct {
	mu   sync.Mutex
	set  map[bodyKey]struct{}
	ring []bodyKey
	next int
	full bool
}

type bodyKey struct {
	h uint64
	n int
}

func newRecentSet(n int) *recentSet {
	n = max(n, 16)
	return &recentSet{set: make(map[bodyKey]struct{}, n), ring: make([]bodyKey, n)}
}

// seen records body and reports whether it was already there.
func (r *recentSet) seen(body []byte) bool {
	k := bodyKey{xxhash.Sum64(body), len(body)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[k]; ok {
		return true
	}
	if r.full {
		delete(r.set, r.ring[r.next])
	}
	r.ring[r.next] = k
	r.set[k] = struct{}{}
	r.next++
	if r.next == len(r.ring) {
		r.next, r.full = 0, true
	}
	return false
}

// systemMessage is the eventBody of v2.system.* and channel.metadata frames
// (the SDK's SystemMessageSystemMessage / ChannelMetadataNotification).
type systemMessage struct {
	Message   string `json:"message"`
	Reason    string `json:"reason"`
	ChannelID string `json:"channelId"`
}

func topicString(t []byte) string { return string(t) }
