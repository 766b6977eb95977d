package zendesk_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cxplay/ctikit/zendesk"
)

// TestCallFieldNames checks every field the client sends in a Talk Partner
// Edition call record against the names Zendesk documents for the standard
// call object (developer.zendesk.com, Talk Partner Edition API, Calls: its
// JSON format table and the create-call examples, whose fields the TPE
// voice comment also carries). A misspelt name is dropped silently by
// Zendesk, so only a test like this one sees it.
func TestCallFieldNames(t *testing.T) {
	documented := map[string]bool{
		"id": true, "app_id": true, "external_id": true, "ticket_id": true, "agent_id": true, "end_user_id": true,
		"from_line": true, "to_line": true, "direction": true, "call_started_at": true, "call_ended_at": true,
		"duration": true, "talk_time": true, "hold_time": true, "wait_time": true, "queue_time": true,
		"queue_name": true, "call_disposition": true, "completion_status": true, "recording_url": true,
		"transcript": true, "summary": true, "comment": true,
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	c := zendesk.Call{
		ID: 1, AppID: 2, ExternalID: "x", TicketID: 3, AgentID: 4, EndUserID: 5, FromLine: "+14155550100",
		ToLine: "+14155550199", Direction: "inbound", CallStartedAt: at, CallEndedAt: at.Add(time.Minute),
		Duration: 60, TalkTime: 50, QueueName: "Support", Disposition: "Resolved", CompletionStatus: "completed",
		RecordingURL: "https://example.com/r", Transcript: "t", Summary: "s",
		Comment: &zendesk.CallComment{AuthorID: 4, Title: "Inbound call", DisplayToAgent: 4},
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k := range got {
		if !documented[k] {
			t.Errorf("call field %q is not a documented call object field", k)
		}
	}
	for _, k := range []string{"app_id", "from_line", "to_line", "call_started_at", "direction"} {
		if _, ok := got[k]; !ok {
			t.Errorf("mandatory field %q is not sent", k)
		}
	}
	var comment map[string]json.RawMessage
	if err := json.Unmarshal(got["comment"], &comment); err != nil {
		t.Fatal(err)
	}
	for k := range comment {
		switch k {
		case "author_id", "title", "public", "display_to_agent":
		default:
			t.Errorf("comment field %q is not documented", k)
		}
	}
}
