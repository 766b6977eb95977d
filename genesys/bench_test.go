package genesys_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	pc "github.com/mypurecloud/platform-client-sdk-go/v157/platformclientv2"
)

func sortedFrames(b *testing.B) ([]string, map[string][]byte) {
	frames := loadFrames(b)
	names := make([]string, 0, len(frames))
	for n := range frames {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, frames
}

// BenchmarkDecode compares, per media, decoding a realistic notification
// frame with ctikit's lean decoder into a cti.Conversation ("lean"), with
// encoding/json into the same lean structs ("stdlib", not mapped) and
// into the SDK's own model, ConversationEventTopicConversation, as the
// SDK's notification handler would ("sdk", which still has to be mapped).
//
//	go test -run XXX -bench Decode -benchmem ./genesys/
func BenchmarkDecode(b *testing.B) {
	names, frames := sortedFrames(b)
	dec := &genesys.Decoder{}
	for _, n := range names {
		frame := frames[n]
		b.Run("lean/"+n, func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, c, err := dec.Frame(frame, fixedTime); err != nil || c == nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("stdlib/"+n, func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, id, err := genesys.StdlibFrame(frame); err != nil || id == "" {
					b.Fatal(err)
				}
			}
		})
		b.Run("sdk/"+n, func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				var f struct {
					TopicName string                                `json:"topicName"`
					EventBody pc.Conversationeventtopicconversation `json:"eventBody"`
				}
				if err := json.Unmarshal(frame, &f); err != nil || f.EventBody.Id == nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDuplicate measures recognising an exact duplicate (the same
// body already seen on another topic): split the frame without decoding,
// hash the body, look it up.
func BenchmarkDuplicate(b *testing.B) {
	names, frames := sortedFrames(b)
	for _, n := range names {
		frame := frames[n]
		r := genesys.NewRecent(4096)
		r.Seen(genesys.DedupeKey(frame))
		b.Run(n, func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if !r.Seen(genesys.DedupeKey(frame)) {
					b.Fatal("not a duplicate")
				}
			}
		})
	}
}

// BenchmarkSourceFrame is the source's whole per-frame path for a new
// update (split, classify, dedupe, decode, track, deliver to a no-op
// handler); compare with lean/ above.
func BenchmarkSourceFrame(b *testing.B) {
	_, frames := sortedFrames(b)
	client, err := genesys.NewClient(genesys.Config{ClientID: "x", ClientSecret: "y", APIURL: "http://127.0.0.1:1"})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	h := cti.HandlerFunc(func(context.Context, *cti.Conversation) error { return nil })
	for _, n := range []string{"voice-transfer-wrapup", "chat", "email", "whatsapp"} {
		frame := frames[n]
		b.Run(n, func(b *testing.B) {
			src, err := genesys.NewSource(client, genesys.WithQueues("q"), genesys.WithDedupeWindow(16), genesys.WithoutAgentDetails())
			if err != nil {
				b.Fatal(err)
			}
			// Vary the conversation id so that the dedupe never hits: 32
			// variants cycling through a 16-body window.
			var env struct {
				EventBody struct {
					ID string `json:"id"`
				} `json:"eventBody"`
			}
			if err := json.Unmarshal(frame, &env); err != nil {
				b.Fatal(err)
			}
			id := env.EventBody.ID
			var variants [][]byte
			for i := range 32 {
				nid := id[:len(id)-2] + fmt.Sprintf("%02d", i)
				variants = append(variants, bytes.ReplaceAll(frame, []byte(id), []byte(nid)))
			}
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				genesys.HandleFrame(src, h, variants[i%32])
				i++
			}
		})
	}
}
