package syncmap

// Point describes one standard data point.
type Point struct {
	// Name is the stable template name: {{.Name}}.
	Name string
	// Type is the Go type of the field in Data.
	Type string
	// Description says what it is and where it comes from.
	Description string
	// Format is how it renders by default.
	Format string
	// Media lists the rule media kinds it applies to; empty means all.
	Media []string
}

var (
	voiceKinds = []string{"voice", "callback"}
	emailKinds = []string{"email"}
	chatKinds  = []string{"chat", "webmessaging", "sms", "whatsapp", "facebook", "instagram", "twitter", "line", "open"}
)

// Catalog lists the standard data points, in documentation order. Every
// entry is a field (or method) of Data.
var Catalog = []Point{
	{"ConversationID", "string", "Genesys conversation id (GUID)", "as is", nil},
	{"ConversationURL", "string", "link to the interaction in Genesys Cloud", "URL", nil},
	{"Media", "string", "Genesys media type: voice, callback, email, chat, message", "as is", nil},
	{"Channel", "string", "messaging channel: sms, whatsapp, facebook, instagram, twitter, line, webmessaging, open", "as is", chatKinds},
	{"Kind", "string", "the rule media key (media, or channel for messaging)", "as is", nil},
	{"Direction", "string", "inbound or outbound", "as is", nil},
	{"PhoneNumber", "string", "the customer's phone number", "E.164", append(append([]string{}, voiceKinds...), "sms", "whatsapp")},
	{"CustomerName", "string", "the customer's name as Genesys has it", "as is", nil},
	{"CustomerEmail", "string", "the customer's email address", "as is", nil},
	{"CustomerAddress", "string", "the customer's address as Genesys gave it (ANI, URI, email, handle)", "as is", nil},
	{"CustomerHandle", "string", "the customer's social handle / platform id", "as is", chatKinds},
	{"AgentName", "string", "the agent's name", "as is", nil},
	{"AgentEmail", "string", "the agent's email", "as is", nil},
	{"AgentUserID", "string", "the agent's Genesys user id", "as is", nil},
	{"QueueName", "string", "the ACD queue the agent took it from", "as is", nil},
	{"QueueID", "string", "the ACD queue id", "as is", nil},
	{"CampaignName", "string", "the outbound campaign", "as is", nil},
	{"CampaignID", "string", "the outbound campaign id", "as is", nil},
	{"StartTime", "string", "when the conversation started", "time zone and layout from config", nil},
	{"ConnectedTime", "string", "when the customer was first connected to an agent", "time zone and layout from config", nil},
	{"EndTime", "string", "when the customer left", "time zone and layout from config", nil},
	{"CallDuration", "string", "the customer's connected → end time", "h:mm:ss", nil},
	{"TalkTime", "string", "this agent's connected → end time", "h:mm:ss", nil},
	{"TransferredTo", "string", "where the agent transferred it (queue / user), or every transfer", "names, comma-separated", nil},
	{"WrapupCode", "string", "the disposition (wrap-up code) id", "as is", nil},
	{"WrapupName", "string", "the disposition (wrap-up code) name", "as is", nil},
	{"WrapupCategory", "string", "the disposition category", "as is", nil},
	{"WrapupNotes", "string", "the agent's call notes", "as is", nil},
	{"RecordingURL", "string", "the voice log link (recording)", "URL", voiceKinds},
	{"Transcript", "string", "the chat / message / voice transcript", "one line per message", nil},
	{"Summary", "string", "AI summary of the conversation", "text", nil},
	{"ChatSummary", "string", "AI summary of a chat, message or email conversation", "text", append(append([]string{}, chatKinds...), "email")},
	{"CallSummary", "string", "AI summary of a call", "text", voiceKinds},
	{"EmailSubject", "string", "the customer's email subject", "text", emailKinds},
	{"EmailBody", "string", "the customer's email body (HTML when it had it)", "HTML or text", emailKinds},
	{"EmailText", "string", "the customer's email as plain text", "text", emailKinds},
	{"ReplySubject", "string", "the agent's reply subject", "text", emailKinds},
	{"ReplyBody", "string", "the agent's reply body", "HTML or text", emailKinds},
	{"ReplyText", "string", "the agent's reply as plain text", "text", emailKinds},
	{"Attributes", "map[string]string", "participant attributes (custom values); {{.Attr \"Name\"}}", "as is", nil},
	{"Start", "time.Time", "raw start time, for {{time .Start \"15:04\"}}", "time.Time", nil},
	{"Connect", "time.Time", "raw connected time", "time.Time", nil},
	{"End", "time.Time", "raw end time", "time.Time", nil},
	{"Duration", "time.Duration", "raw call duration, for {{duration .Duration}}", "time.Duration", nil},
	{"Talk", "time.Duration", "raw talk time of this agent", "time.Duration", nil},
}

// Applies reports whether point p is meaningful for conversation kind k.
func (p Point) Applies(k string) bool {
	if len(p.Media) == 0 {
		return true
	}
	for _, m := range p.Media {
		if m == k {
			return true
		}
	}
	return false
}
