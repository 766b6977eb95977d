package syncmap

import "slices"

// Point describes one standard data point.
type Point struct {
	// Name is the stable template name: {{.Name}}.
	Name string
	// Type is the Go type of the field in Data.
	Type string
	// Label is how the default comment names it ("Call duration").
	Label string
	// Description says what it is and where it comes from.
	Description string
	// Format is how it renders by default.
	Format string
	// Media lists the rule media kinds it applies to; empty means all.
	Media []string
	// Late marks data Genesys often has only minutes after the end
	// (recording, transcript, AI summary): the sink waits for it or
	// updates the same record when it comes.
	Late bool
	// Long marks multi-line text the default comment shows as a section.
	Long bool
	// Comment marks the points the default comment lists (when present).
	Comment bool
}

var (
	voiceKinds   = []string{"voice", "callback"}
	emailKinds   = []string{"email"}
	chatKinds    = []string{"chat", "webmessaging", "sms", "whatsapp", "facebook", "instagram", "twitter", "line", "open"}
	messageKinds = []string{"webmessaging", "sms", "whatsapp", "facebook", "instagram", "twitter", "line", "open"}
	phoneKinds   = []string{"voice", "callback", "sms", "whatsapp"}
	textKinds    = slices.Concat(chatKinds, emailKinds)
	recordKinds  = slices.Concat(voiceKinds, chatKinds)
)

// Catalog lists the standard data points, in documentation order. Every
// entry is a field (or method) of Data; every one renders for every media
// ("" where it does not apply or is unknown).
var Catalog = []Point{
	{Name: "ConversationID", Type: "string", Label: "Conversation ID", Description: "Genesys conversation id (GUID)", Format: "as is", Comment: true},
	{Name: "ConversationURL", Type: "string", Label: "Conversation", Description: "link to the interaction in Genesys Cloud", Format: "URL", Comment: true},
	{Name: "Media", Type: "string", Label: "Media", Description: "Genesys media type: voice, callback, email, chat, message", Format: "as is"},
	{Name: "Channel", Type: "string", Label: "Channel", Description: "messaging channel: sms, whatsapp, facebook, instagram, twitter, line, webmessaging, open", Format: "as is", Media: messageKinds, Comment: true},
	{Name: "Kind", Type: "string", Label: "Kind", Description: "the rule media key (media, or channel for messaging)", Format: "as is"},
	{Name: "Direction", Type: "string", Label: "Direction", Description: "inbound or outbound", Format: "as is", Comment: true},
	{Name: "PhoneNumber", Type: "string", Label: "Phone number", Description: "the customer's phone number", Format: "E.164", Media: phoneKinds, Comment: true},
	{Name: "CustomerName", Type: "string", Label: "Customer", Description: "the customer's name as Genesys has it", Format: "as is", Comment: true},
	{Name: "CustomerEmail", Type: "string", Label: "Customer email", Description: "the customer's email address", Format: "as is", Comment: true},
	{Name: "CustomerAddress", Type: "string", Label: "Customer address", Description: "the customer's address as Genesys gave it (ANI, URI, email, handle)", Format: "as is"},
	{Name: "CustomerHandle", Type: "string", Label: "Customer handle", Description: "the customer's social handle / platform id", Format: "as is", Media: messageKinds, Comment: true},
	{Name: "AgentName", Type: "string", Label: "Agent", Description: "the agent's name", Format: "as is", Comment: true},
	{Name: "AgentEmail", Type: "string", Label: "Agent email", Description: "the agent's email", Format: "as is"},
	{Name: "AgentUserID", Type: "string", Label: "Agent user ID", Description: "the agent's Genesys user id", Format: "as is"},
	{Name: "QueueName", Type: "string", Label: "Queue", Description: "the ACD queue the agent took it from", Format: "as is", Comment: true},
	{Name: "QueueID", Type: "string", Label: "Queue ID", Description: "the ACD queue id", Format: "as is"},
	{Name: "CampaignName", Type: "string", Label: "Campaign", Description: "the outbound campaign", Format: "as is", Comment: true},
	{Name: "CampaignID", Type: "string", Label: "Campaign ID", Description: "the outbound campaign id", Format: "as is"},
	{Name: "StartTime", Type: "string", Label: "Started", Description: "when the conversation started (call start time)", Format: "time zone and layout from config", Comment: true},
	{Name: "ConnectedTime", Type: "string", Label: "Connected", Description: "when the customer was first connected to an agent", Format: "time zone and layout from config", Comment: true},
	{Name: "EndTime", Type: "string", Label: "Ended", Description: "when the customer left", Format: "time zone and layout from config", Comment: true},
	{Name: "CallDuration", Type: "string", Label: "Duration", Description: "the customer's connected → end time", Format: "h:mm:ss", Comment: true},
	{Name: "TalkTime", Type: "string", Label: "Agent talk time", Description: "this agent's connected → end time", Format: "h:mm:ss", Comment: true},
	{Name: "TransferredTo", Type: "string", Label: "Transferred to", Description: "where the agent transferred it (queue / user), or every transfer", Format: "names, comma-separated", Comment: true},
	{Name: "TransferType", Type: "string", Label: "Transfer type", Description: "how the agent transferred it (blind, consult, conference or forward), or every transfer's", Format: "kinds, comma-separated", Comment: true},
	{Name: "WrapupCode", Type: "string", Label: "Disposition ID", Description: "the disposition (wrap-up code) id", Format: "as is", Comment: true},
	{Name: "WrapupName", Type: "string", Label: "Disposition", Description: "the disposition (wrap-up code) name", Format: "as is", Comment: true},
	{Name: "WrapupCategory", Type: "string", Label: "Disposition category", Description: "the disposition category", Format: "as is", Comment: true},
	{Name: "WrapupNotes", Type: "string", Label: "Notes", Description: "the agent's call notes (wrap-up notes)", Format: "as is", Long: true, Comment: true},
	{Name: "RecordingURL", Type: "string", Label: "Recording", Description: "the voice log link (recording)", Format: "URL", Media: voiceKinds, Late: true, Comment: true},
	{Name: "Transcript", Type: "string", Label: "Transcript", Description: "the chat / message / voice transcript", Format: "one line per message", Media: recordKinds, Late: true, Long: true, Comment: true},
	{Name: "Summary", Type: "string", Label: "Summary", Description: "AI summary of the conversation, any media", Format: "text", Late: true},
	{Name: "ChatSummary", Type: "string", Label: "AI summary", Description: "AI summary of a chat, message or email conversation", Format: "text", Media: textKinds, Late: true, Long: true, Comment: true},
	{Name: "CallSummary", Type: "string", Label: "AI summary", Description: "AI summary of a call", Format: "text", Media: voiceKinds, Late: true, Long: true, Comment: true},
	{Name: "EmailSubject", Type: "string", Label: "Customer email subject", Description: "the customer's email subject", Format: "text", Media: emailKinds, Comment: true},
	{Name: "EmailBody", Type: "string", Label: "Customer email (HTML)", Description: "the customer's email body (HTML when it had it)", Format: "HTML or text", Media: emailKinds},
	{Name: "EmailText", Type: "string", Label: "Customer email", Description: "the customer's email as plain text", Format: "text", Media: emailKinds, Long: true, Comment: true},
	{Name: "ReplySubject", Type: "string", Label: "Reply subject", Description: "the agent's reply subject", Format: "text", Media: emailKinds, Comment: true},
	{Name: "ReplyBody", Type: "string", Label: "Reply (HTML)", Description: "the agent's reply body", Format: "HTML or text", Media: emailKinds},
	{Name: "ReplyText", Type: "string", Label: "Reply", Description: "the agent's reply as plain text", Format: "text", Media: emailKinds, Long: true, Comment: true},
	{Name: "Attributes", Type: "Attrs", Label: "Attributes", Description: "participant attributes (custom values); {{.Attr \"Name\"}} or {{.Attributes.Name}}", Format: "name=value; ..."},
	{Name: "Attr", Type: "func(name string) string", Label: "Attribute", Description: "one participant attribute: {{.Attr \"AccountNumber\"}}", Format: "as is"},
	{Name: "AttrOr", Type: "func(name, def string) string", Label: "Attribute", Description: "one participant attribute or a default: {{.AttrOr \"Tier\" \"standard\"}}", Format: "as is"},
	{Name: "Values", Type: "Attrs", Label: "Values", Description: "custom values computed from other data points and attributes (WithComputed)", Format: "name=value; ..."},
	{Name: "Value", Type: "func(name string) string", Label: "Value", Description: "one computed value, else the attribute of that name: {{.Value \"Segment\"}}", Format: "as is"},
	{Name: "Start", Type: "Time", Label: "Start", Description: "raw start time, for {{time .Start \"15:04\"}}", Format: "RFC 3339"},
	{Name: "Connect", Type: "Time", Label: "Connect", Description: "raw connected time", Format: "RFC 3339"},
	{Name: "End", Type: "Time", Label: "End", Description: "raw end time", Format: "RFC 3339"},
	{Name: "Duration", Type: "Duration", Label: "Duration", Description: "raw call duration, for {{duration .Duration}}, {{.Duration.WholeSeconds}} (an integer field) or {{.Duration.Seconds}}", Format: "h:mm:ss"},
	{Name: "Talk", Type: "Duration", Label: "Talk", Description: "raw talk time of this agent", Format: "h:mm:ss"},
}

// Applies reports whether point p is meaningful for conversation kind k.
func (p Point) Applies(k string) bool {
	return len(p.Media) == 0 || slices.Contains(p.Media, k)
}

// Lookup returns the catalog entry named name.
func Lookup(name string) (Point, bool) {
	for _, p := range Catalog {
		if p.Name == name {
			return p, true
		}
	}
	return Point{}, false
}

// LatePoints lists the names of the data points that often arrive late
// (recording, transcript, AI summaries).
func LatePoints() []string {
	var out []string
	for _, p := range Catalog {
		if p.Late {
			out = append(out, p.Name)
		}
	}
	return out
}
