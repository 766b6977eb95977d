package genesys

import (
	"encoding/json"
	"time"
)

// The lean wire structs: only the fields ctikit uses of a Genesys Cloud
// conversation, in both of its shapes — the conversation event topics
// (v2.users.{id}.conversations and v2.routing.queues.{id}.conversations,
// the SDK's ConversationEventTopicConversation) and the REST resource
// (GET /api/v2/conversations/{id}, the SDK's Conversation). The JSON names
// are the SDK model structs' tags; the REST-only fields are simply absent
// from frames.

type wireConversation struct {
	ID           string            `json:"id"`
	StartTime    wtime             `json:"startTime"` // REST only
	EndTime      wtime             `json:"endTime"`   // REST only
	Participants []wireParticipant `json:"participants"`
}

type wireParticipant struct {
	ID             string `json:"id"`
	StartTime      wtime  `json:"startTime"` // REST only
	ConnectedTime  wtime  `json:"connectedTime"`
	EndTime        wtime  `json:"endTime"`
	UserID         string `json:"userId"`
	Name           string `json:"name"`
	QueueID        string `json:"queueId"`
	QueueName      string `json:"queueName"` // REST only
	Purpose        string `json:"purpose"`
	Address        string `json:"address"`
	Ani            string `json:"ani"`     // REST only
	AniName        string `json:"aniName"` // REST only
	Dnis           string `json:"dnis"`    // REST only
	WrapupRequired bool   `json:"wrapupRequired"`
	WrapupExpected bool   `json:"wrapupExpected"` // topics only
	// The participant a supervisor listens in on or coaches: an
	// observer, not a leg of the conversation.
	MonitoredParticipantID string            `json:"monitoredParticipantId"`
	CoachedParticipantID   string            `json:"coachedParticipantId"`
	Wrapup                 *wireWrapup       `json:"wrapup"`
	RoutingData            *wireRoutingData  `json:"conversationRoutingData"`
	Attributes             map[string]string `json:"attributes"`
	Calls                  []wireComm        `json:"calls"`
	Callbacks              []wireComm        `json:"callbacks"`
	Chats                  []wireComm        `json:"chats"`
	Emails                 []wireComm        `json:"emails"`
	Messages               []wireComm        `json:"messages"`
	SocialExpressions      []wireComm        `json:"socialExpressions"`
}

type wireRoutingData struct {
	Queue struct {
		ID string `json:"id"`
	} `json:"queue"`
}

// wireComm is one communication of a participant: a call, callback, chat,
// email, message or social expression (the union of the fields used).
type wireComm struct {
	ID                    string       `json:"id"`
	State                 string       `json:"state"`
	Direction             string       `json:"direction"`
	DisconnectType        string       `json:"disconnectType"`
	StartAlertingTime     wtime        `json:"startAlertingTime"` // REST only
	ConnectedTime         wtime        `json:"connectedTime"`
	DisconnectedTime      wtime        `json:"disconnectedTime"`
	Self                  *wireAddress `json:"self"`        // calls
	Other                 *wireAddress `json:"other"`       // calls
	FromAddress           *wireAddress `json:"fromAddress"` // messages
	ToAddress             *wireAddress `json:"toAddress"`   // messages
	Type                  string       `json:"type"`        // messages: the messageType (sms, whatsapp, ...)
	MessageType           string       `json:"messageType"` // the same, as analytics names it
	Subject               string       `json:"subject"`     // emails
	CallbackNumbers       []string     `json:"callbackNumbers"`
	CallbackUserName      string       `json:"callbackUserName"`
	DialerPreview         *wireDialer  `json:"dialerPreview"`
	SocialMediaHub        string       `json:"socialMediaHub"`
	SocialUserName        string       `json:"socialUserName"`
	Wrapup                *wireWrapup  `json:"wrapup"`
	AfterCallWork         *wireACW     `json:"afterCallWork"`
	AfterCallWorkRequired bool         `json:"afterCallWorkRequired"`
}

type wireDialer struct {
	CampaignID string `json:"campaignId"`
}

type wireACW struct {
	State string `json:"state"`
}

type wireWrapup struct {
	Code            string   `json:"code"`
	Name            string   `json:"name"` // REST only
	Notes           string   `json:"notes"`
	Tags            []string `json:"tags"`
	DurationSeconds int      `json:"durationSeconds"`
	EndTime         wtime    `json:"endTime"`
}

// wireAddress is Genesys' address object ({name, addressNormalized,
// addressRaw, addressDisplayable}); a plain string is accepted too.
type wireAddress struct {
	Name               string `json:"name"`
	AddressNormalized  string `json:"addressNormalized"`
	AddressRaw         string `json:"addressRaw"`
	AddressDisplayable string `json:"addressDisplayable"`
}

func (a *wireAddress) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &a.AddressNormalized)
	}
	type plain wireAddress
	return json.Unmarshal(b, (*plain)(a))
}

// value is the most useful form of the address.
func (a *wireAddress) value() string {
	if a == nil {
		return ""
	}
	for _, s := range []string{a.AddressNormalized, a.AddressRaw, a.AddressDisplayable} {
		if s != "" {
			return s
		}
	}
	return ""
}

// wtime is a timestamp that tolerates null and "" (left zero) and ISO-8601
// with or without fractional seconds.
type wtime struct{ time.Time }

func (t *wtime) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		t.parse(b[1 : len(b)-1])
	}
	return nil // null, a number, a bad time: no time, not worth losing the frame over
}

// parse sets t from the raw content of a JSON string, leaving it alone
// when the content is not a timestamp.
func (t *wtime) parse(raw []byte) {
	if len(raw) == 0 {
		return
	}
	s := string(raw)
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// Be lenient with a timestamp without a zone.
		if v, err = time.Parse("2006-01-02T15:04:05.999999999", s); err != nil {
			return
		}
	}
	t.Time = v.UTC()
}
