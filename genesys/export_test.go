package genesys

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// Test-only access to internals.

// SplitFrame exposes splitFrame, returning the exact event body.
func SplitFrame(b []byte) (topic, body []byte, err error) {
	t, bd, exact, err := splitFrame(b)
	if err != nil {
		return nil, nil, err
	}
	bd, err = eventBody(b, bd, exact)
	return t, bd, err
}

// DedupeKey is the bytes the duplicate check hashes.
func DedupeKey(b []byte) []byte {
	_, bd, _, _ := splitFrame(b)
	return bd
}

// Recent is the duplicate detector.
type Recent = recentSet

// NewRecent exposes newRecentSet.
func NewRecent(n int) *Recent { return newRecentSet(n) }

// Seen exposes recentSet.seen.
func (r *recentSet) Seen(b []byte) bool { return r.seen(b) }

// HandleFrame runs the source's frame path (split, classify, dedupe,
// decode, track, deliver) as the websocket reader does.
func HandleFrame(s *Source, h cti.Handler, frame []byte) {
	s.h = h
	s.handle(context.Background(), &conn{s: s, sys: make(chan frameKind, 4)}, frame, time.Now())
}

// DecodeBoth decodes a conversation body with the hand-written decoder and
// with encoding/json into the same lean structs.
func DecodeBoth(b []byte) (lean, std any, leanErr, stdErr error) {
	var l, s wireConversation
	leanErr = decodeConversation(b, &l)
	stdErr = json.Unmarshal(b, &s)
	return l, s, leanErr, stdErr
}

// StdlibFrame decodes a notification frame with encoding/json into the
// lean structs: the "plain lean decode" baseline for figure 3.
func StdlibFrame(frame []byte) (topic, id string, err error) {
	var env struct {
		TopicName string           `json:"topicName"`
		EventBody wireConversation `json:"eventBody"`
	}
	err = json.Unmarshal(frame, &env)
	return env.TopicName, env.EventBody.ID, err
}

// LeanFieldNames are the JSON names of the lean structs' fields (for the
// differential test, which skips inputs with case variants of them:
// encoding/json matches keys case-insensitively, Genesys never varies them).
func LeanFieldNames() []string {
	var names []string
	for _, t := range []reflect.Type{reflect.TypeFor[wireConversation](), reflect.TypeFor[wireParticipant](),
		reflect.TypeFor[wireComm](), reflect.TypeFor[wireWrapup](), reflect.TypeFor[wireAddress](),
		reflect.TypeFor[wireRoutingData](), reflect.TypeFor[wireDialer](), reflect.TypeFor[wireACW]()} {
		for i := range t.NumField() {
			if n, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); n != "" && n != "-" {
				names = append(names, n)
			}
		}
	}
	return names
}

// Download exposes Client.download.
func (c *Client) Download(ctx context.Context, op, rawURL string) ([]byte, error) {
	return c.download(ctx, op, rawURL)
}

// ApplyAnalytics applies an analytics conversation-details body to c, as
// the enricher does.
func ApplyAnalytics(c *cti.Conversation, body []byte) error {
	var a analyticsConv
	if err := json.Unmarshal(body, &a); err != nil {
		return err
	}
	applyAnalytics(c, &a)
	return nil
}

// Raw exposes raw: one request, its body undecoded.
func (c *Client) Raw(ctx context.Context, op, method, path string, query map[string]string, body any) ([]byte, error) {
	return c.raw(ctx, op, method, path, query, body)
}
