package genesystest

import (
	"maps"
	"time"
)

// Media is the kind of a scripted conversation.
type Media string

// Media the emulator scripts. MediaMessage takes a MessageType (sms,
// whatsapp, facebook, twitter, line, instagram, webmessaging, open);
// MediaSocial (a social expression: a public post) takes a social media hub
// (facebook, twitter, instagram) in MessageType.
const (
	MediaVoice    Media = "voice"
	MediaCallback Media = "callback"
	MediaChat     Media = "chat"
	MediaEmail    Media = "email"
	MediaMessage  Media = "message"
	MediaSocial   Media = "social"
)

// conversation is the emulator's state of one conversation; rendered into
// the REST resource and the event topic body.
type conversation struct {
	id           string
	media        Media
	messageType  string
	direction    string
	start, end   time.Time
	participants []*participant
	recordingID  string
	recState     string // the recording's fileState; "" is AVAILABLE
	subject      string
	inbound      email
	reply        *email
	lines        []line
	summary      string
	campaign     string
	history      [][]byte // topic bodies published, oldest first
	customerAddr string
	orgAddr      string
	noWrapup     bool
}

type email struct {
	id, from, fromName, to, subject, text, html string
	at                                          time.Time
}

type line struct {
	id   string
	at   time.Time
	from *participant
	text string
}

type participant struct {
	id, purpose, userID, name, queueID, queueName string
	address, ani, dnis, aniName                   string
	start, connected, end                         time.Time
	wrapupRequired                                bool
	attributes                                    map[string]string
	comms                                         []*comm
}

type comm struct {
	kind                        Media
	id, state, direction, dtype string
	held                        bool // on hold (the customer, while the agent consults)
	alerting, connected, discon time.Time
	self, other                 *jsonAddress
	from, to                    *jsonAddress
	msgType                     string
	subject                     string
	callbackNumbers             []string
	callbackName                string
	campaignID                  string
	hub, socialUser             string
	wrapup                      *jsonWrapup
	acwState                    string
	acwRequired                 bool
	acwStart, acwEnd            time.Time
	messageIDs                  []string
}

func (p *participant) primary() *comm {
	if len(p.comms) == 0 {
		return nil
	}
	return p.comms[len(p.comms)-1]
}

// The JSON shapes: tags follow platformclientv2 v157's model structs
// (Conversation / Participant / Call / ... for REST, and
// ConversationEventTopicConversation / ...Participant / ...Call / ... for
// the notification topics, which share these names).

type jsonConversation struct {
	ID              string             `json:"id"`
	Name            string             `json:"name,omitempty"`
	StartTime       *time.Time         `json:"startTime,omitempty"`
	EndTime         *time.Time         `json:"endTime,omitempty"`
	Address         string             `json:"address,omitempty"`
	Participants    []jsonParticipant  `json:"participants"`
	RecordingState  string             `json:"recordingState,omitempty"`
	State           string             `json:"state,omitempty"`
	RecentTransfers []jsonTransfer     `json:"recentTransfers,omitempty"`
	Divisions       []jsonDivisionRefs `json:"divisions,omitempty"`
	MaxParticipants int                `json:"maxParticipants,omitempty"`
	SelfURI         string             `json:"selfUri,omitempty"`
}

type jsonDivisionRefs struct {
	Division jsonRef   `json:"division"`
	Entities []jsonRef `json:"entities,omitempty"`
}

type jsonRef struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	SelfURI string `json:"selfUri,omitempty"`
}

type jsonTransfer struct {
	ID         string    `json:"id"`
	State      string    `json:"state"`
	DateIssued time.Time `json:"dateIssued"`
	Initiator  *struct {
		UserID string `json:"userId,omitempty"`
	} `json:"initiator,omitempty"`
	Destination *struct {
		UserID  string `json:"userId,omitempty"`
		Address string `json:"address,omitempty"`
	} `json:"destination,omitempty"`
	TransferType string `json:"transferType"`
}

type jsonParticipant struct {
	ID                      string            `json:"id"`
	StartTime               *time.Time        `json:"startTime,omitempty"` // REST only
	ConnectedTime           *time.Time        `json:"connectedTime,omitempty"`
	EndTime                 *time.Time        `json:"endTime,omitempty"`
	Name                    string            `json:"name,omitempty"`
	UserURI                 string            `json:"userUri,omitempty"` // REST only
	UserID                  string            `json:"userId,omitempty"`
	QueueID                 string            `json:"queueId,omitempty"`
	QueueName               string            `json:"queueName,omitempty"` // REST only
	Purpose                 string            `json:"purpose"`
	ParticipantType         string            `json:"participantType,omitempty"` // REST only
	Address                 string            `json:"address,omitempty"`
	Ani                     string            `json:"ani,omitempty"`     // REST only
	AniName                 string            `json:"aniName,omitempty"` // REST only
	Dnis                    string            `json:"dnis,omitempty"`    // REST only
	WrapupRequired          bool              `json:"wrapupRequired"`
	WrapupExpected          *bool             `json:"wrapupExpected,omitempty"` // topics only
	Wrapup                  *jsonWrapup       `json:"wrapup,omitempty"`
	StartAcwTime            *time.Time        `json:"startAcwTime,omitempty"`
	EndAcwTime              *time.Time        `json:"endAcwTime,omitempty"`
	ConversationRoutingData *jsonRoutingData  `json:"conversationRoutingData,omitempty"`
	AlertingTimeoutMs       int               `json:"alertingTimeoutMs,omitempty"`
	MediaRoles              []string          `json:"mediaRoles,omitempty"`
	Attributes              map[string]string `json:"attributes"`
	Calls                   []jsonComm        `json:"calls,omitempty"`
	Callbacks               []jsonComm        `json:"callbacks,omitempty"`
	Chats                   []jsonComm        `json:"chats,omitempty"`
	Emails                  []jsonComm        `json:"emails,omitempty"`
	Messages                []jsonComm        `json:"messages,omitempty"`
	SocialExpressions       []jsonComm        `json:"socialExpressions,omitempty"`
}

type jsonRoutingData struct {
	Queue    jsonRef `json:"queue"`
	Priority int     `json:"priority"`
}

type jsonComm struct {
	State                 string           `json:"state"`
	InitialState          string           `json:"initialState,omitempty"`
	ID                    string           `json:"id"`
	Direction             string           `json:"direction,omitempty"`
	Recording             *bool            `json:"recording,omitempty"`
	RecordingState        string           `json:"recordingState,omitempty"`
	RecordingID           string           `json:"recordingId,omitempty"` // REST only
	Muted                 *bool            `json:"muted,omitempty"`
	Confined              *bool            `json:"confined,omitempty"`
	Held                  bool             `json:"held"`
	DisconnectType        string           `json:"disconnectType,omitempty"`
	StartAlertingTime     *time.Time       `json:"startAlertingTime,omitempty"` // REST only
	ConnectedTime         *time.Time       `json:"connectedTime,omitempty"`
	DisconnectedTime      *time.Time       `json:"disconnectedTime,omitempty"`
	Provider              string           `json:"provider,omitempty"`
	Self                  *jsonAddress     `json:"self,omitempty"`
	Other                 *jsonAddress     `json:"other,omitempty"`
	ToAddress             *jsonAddress     `json:"toAddress,omitempty"`
	FromAddress           *jsonAddress     `json:"fromAddress,omitempty"`
	Messages              []jsonMsgDetails `json:"messages,omitempty"`
	Type                  string           `json:"type,omitempty"`
	RecipientType         string           `json:"recipientType,omitempty"`
	Subject               string           `json:"subject,omitempty"`
	MessagesSent          *int             `json:"messagesSent,omitempty"`
	MessageID             string           `json:"messageId,omitempty"`
	CallbackNumbers       []string         `json:"callbackNumbers,omitempty"`
	CallbackUserName      string           `json:"callbackUserName,omitempty"`
	CallbackScheduledTime *time.Time       `json:"callbackScheduledTime,omitempty"`
	DialerPreview         *jsonDialer      `json:"dialerPreview,omitempty"`
	SocialMediaID         string           `json:"socialMediaId,omitempty"`
	SocialMediaHub        string           `json:"socialMediaHub,omitempty"`
	SocialUserName        string           `json:"socialUserName,omitempty"`
	PreviewText           string           `json:"previewText,omitempty"`
	RoomID                string           `json:"roomId,omitempty"`
	Wrapup                *jsonWrapup      `json:"wrapup,omitempty"`
	AfterCallWork         *jsonACW         `json:"afterCallWork,omitempty"`
	AfterCallWorkRequired *bool            `json:"afterCallWorkRequired,omitempty"`
	QueueMediaSettings    *struct {
		ServiceLevelPercentage    float64 `json:"serviceLevelPercentage"`
		ServiceLevelDurationMs    int     `json:"serviceLevelDurationMs"`
		AlertingTimeoutSeconds    int     `json:"alertingTimeoutSeconds,omitempty"`
		EnableAutoAnswer          bool    `json:"enableAutoAnswer"`
		AutoAnswerAlertToneSecond int     `json:"autoAnswerAlertToneSeconds,omitempty"`
	} `json:"queueMediaSettings,omitempty"`
}

type jsonMsgDetails struct {
	MessageID           string    `json:"messageId"`
	MessageTime         time.Time `json:"messageTime"`
	MessageStatus       string    `json:"messageStatus"`
	MessageSegmentCount int       `json:"messageSegmentCount,omitempty"`
}

type jsonDialer struct {
	ID            string `json:"id,omitempty"`
	ContactID     string `json:"contactId,omitempty"`
	ContactListID string `json:"contactListId,omitempty"`
	CampaignID    string `json:"campaignId,omitempty"`
}

type jsonAddress struct {
	Name               string `json:"name,omitempty"`
	NameRaw            string `json:"nameRaw,omitempty"`
	AddressNormalized  string `json:"addressNormalized,omitempty"`
	AddressRaw         string `json:"addressRaw,omitempty"`
	AddressDisplayable string `json:"addressDisplayable,omitempty"`
}

type jsonWrapup struct {
	Code            string     `json:"code,omitempty"`
	Name            string     `json:"name,omitempty"` // REST only
	Notes           string     `json:"notes,omitempty"`
	Tags            []string   `json:"tags,omitempty"`
	DurationSeconds int        `json:"durationSeconds,omitempty"`
	EndTime         *time.Time `json:"endTime,omitempty"`
	Provisional     *bool      `json:"provisional,omitempty"` // REST only
}

type jsonACW struct {
	State     string     `json:"state"`
	StartTime *time.Time `json:"startTime,omitempty"`
	EndTime   *time.Time `json:"endTime,omitempty"`
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func bp(b bool) *bool { return &b }

// render builds the JSON shape: the REST resource when rest, else the
// event topic body.
func (c *conversation) render(rest bool, s *Server) jsonConversation {
	out := jsonConversation{ID: c.id, Participants: make([]jsonParticipant, 0, len(c.participants)), MaxParticipants: 10}
	if rest {
		out.StartTime, out.EndTime = tp(c.start), tp(c.end)
		out.SelfURI = "/api/v2/conversations/" + c.id
		out.State = "connected"
		if !c.end.IsZero() {
			out.State = "disconnected"
		}
	}
	if c.media == MediaVoice {
		out.RecordingState = "active"
		if !c.end.IsZero() {
			out.RecordingState = "none"
		}
	}
	out.Divisions = []jsonDivisionRefs{{Division: jsonRef{ID: homeDivision.ID, SelfURI: "/api/v2/authorization/divisions/" + homeDivision.ID}}}
	for _, p := range c.participants {
		jp := jsonParticipant{
			ID: p.id, ConnectedTime: tp(p.connected), EndTime: tp(p.end), Name: p.name, UserID: p.userID,
			QueueID: p.queueID, Purpose: p.purpose, Address: p.address, WrapupRequired: p.wrapupRequired,
			Attributes: maps.Clone(p.attributes),
		}
		if jp.Attributes == nil {
			jp.Attributes = map[string]string{}
		}
		if rest {
			jp.StartTime = tp(p.start)
			jp.QueueName = p.queueName
			jp.Ani, jp.Dnis, jp.AniName = p.ani, p.dnis, p.aniName
			if p.userID != "" {
				jp.UserURI = "/api/v2/users/" + p.userID
			}
			switch p.purpose {
			case "customer", "external":
				jp.ParticipantType = "External"
			case "agent", "user":
				jp.ParticipantType = "Internal"
			}
		} else if p.purpose == "agent" || p.purpose == "user" {
			jp.WrapupExpected = bp(p.wrapupRequired)
		}
		if p.purpose == "agent" {
			jp.AlertingTimeoutMs = 8000
			jp.MediaRoles = []string{"full"}
			if p.queueID != "" {
				jp.ConversationRoutingData = &jsonRoutingData{Queue: jsonRef{ID: p.queueID}, Priority: 0}
				if rest {
					jp.ConversationRoutingData.Queue.SelfURI = "/api/v2/routing/queues/" + p.queueID
				}
			}
		}
		for _, m := range p.comms {
			jc := jsonComm{
				State: m.state, InitialState: "alerting", ID: m.id, Direction: m.direction, DisconnectType: m.dtype, Held: m.held,
				ConnectedTime: tp(m.connected), DisconnectedTime: tp(m.discon), Provider: "PureCloud",
				Wrapup: m.wrapup, AfterCallWorkRequired: nil,
			}
			if p.purpose == "customer" || p.purpose == "external" {
				jc.InitialState = "connected"
				if c.direction == "outbound" {
					jc.InitialState = "dialing"
				}
			}
			if rest {
				jc.StartAlertingTime = tp(m.alerting)
			}
			if m.wrapup != nil && rest {
				w := *m.wrapup
				w.Name = s.codeName(w.Code)
				w.Provisional = bp(false)
				jc.Wrapup = &w
			}
			if m.acwState != "" {
				jc.AfterCallWork = &jsonACW{State: m.acwState, StartTime: tp(m.acwStart), EndTime: tp(m.acwEnd)}
			}
			if p.purpose == "agent" || p.purpose == "user" {
				jc.AfterCallWorkRequired = bp(m.acwRequired)
			}
			// Fields the SDK's models do not have for this media.
			switch {
			case m.kind == MediaChat && !rest:
				jc.Direction = ""
			case m.kind == MediaSocial:
				jc.Direction = ""
				if rest {
					jc.InitialState = ""
				}
			}
			switch m.kind {
			case MediaVoice:
				jc.Self, jc.Other = m.self, m.other
				jc.Recording = bp(c.recordingID != "")
				jc.Muted, jc.Confined = bp(false), bp(false)
				jc.RecordingState = "none"
				if rest && c.recordingID != "" && p.purpose == "customer" {
					jc.RecordingID = c.recordingID
				}
				jp.Calls = append(jp.Calls, jc)
			case MediaCallback:
				jc.CallbackNumbers, jc.CallbackUserName = m.callbackNumbers, m.callbackName
				if m.campaignID != "" {
					jc.DialerPreview = &jsonDialer{ID: "preview-" + c.id, CampaignID: m.campaignID, ContactID: "contact-" + c.id, ContactListID: "list-1"}
				}
				jp.Callbacks = append(jp.Callbacks, jc)
			case MediaChat:
				jc.RoomID = "room-" + c.id + "@conference.example.com"
				jp.Chats = append(jp.Chats, jc)
			case MediaEmail:
				jc.Subject = m.subject
				n := 0
				if c.reply != nil {
					n = 1
				}
				jc.MessagesSent = &n
				jc.MessageID = c.inbound.id
				jp.Emails = append(jp.Emails, jc)
			case MediaMessage:
				jc.Type, jc.FromAddress, jc.ToAddress = m.msgType, m.from, m.to
				jc.RecipientType = "mobile"
				for _, l := range c.lines {
					jc.Messages = append(jc.Messages, jsonMsgDetails{MessageID: l.id, MessageTime: l.at.UTC(), MessageStatus: "delivered", MessageSegmentCount: 1})
				}
				jp.Messages = append(jp.Messages, jc)
			case MediaSocial:
				jc.SocialMediaHub, jc.SocialUserName = m.hub, m.socialUser
				jc.SocialMediaID = "post-" + c.id
				jc.PreviewText = firstText(c.lines)
				jp.SocialExpressions = append(jp.SocialExpressions, jc)
			}
		}
		out.Participants = append(out.Participants, jp)
	}
	return out
}

func firstText(ls []line) string {
	if len(ls) == 0 {
		return ""
	}
	return ls[0].text
}
