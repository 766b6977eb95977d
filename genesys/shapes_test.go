package genesys_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	gt "github.com/cxplay/ctikit/genesys/genesystest"
	pc "github.com/mypurecloud/platform-client-sdk-go/v157/platformclientv2"
)

// checkShape fails for every JSON key of v that the SDK model type typ has
// no field for (by json tag), recursively: the emulator must speak exactly
// the shapes the SDK's model structs define.
func checkShape(t *testing.T, path string, v any, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() == reflect.Interface {
		return // free-form (map[string]interface{} data)
	}
	switch v := v.(type) {
	case map[string]any:
		switch typ.Kind() {
		case reflect.Map:
			for k, x := range v {
				checkShape(t, path+"."+k, x, typ.Elem())
			}
		case reflect.Struct:
			fields := map[string]reflect.Type{}
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name != "" && name != "-" {
					fields[name] = f.Type
				}
			}
			for k, x := range v {
				ft, ok := fields[k]
				if !ok {
					t.Errorf("%s.%s: no such field in the SDK's %s", path, k, typ.Name())
					continue
				}
				checkShape(t, path+"."+k, x, ft)
			}
		default:
			t.Errorf("%s: an object where the SDK has %s", path, typ)
		}
	case []any:
		if typ.Kind() != reflect.Slice {
			t.Errorf("%s: an array where the SDK has %s", path, typ)
			return
		}
		for i, x := range v {
			checkShape(t, path+"["+string(rune('0'+i%10))+"]", x, typ.Elem())
		}
	case string:
		if k := typ.Kind(); k != reflect.String && typ.String() != "time.Time" {
			t.Errorf("%s: a string where the SDK has %s", path, typ)
		}
	case bool:
		if typ.Kind() != reflect.Bool {
			t.Errorf("%s: a bool where the SDK has %s", path, typ)
		}
	case float64:
		switch typ.Kind() {
		case reflect.Int, reflect.Int32, reflect.Int64, reflect.Float32, reflect.Float64:
		default:
			t.Errorf("%s: a number where the SDK has %s", path, typ)
		}
	}
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// TestEmulatorSpeaksSDKShapes fetches every endpoint of the emulator with
// a real token and checks its JSON against the SDK's model structs; the
// websocket frames' bodies too, and that the SDK decodes them.
func TestEmulatorSpeaksSDKShapes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.client.CheckAuth(ctx); err != nil {
		t.Fatal(err)
	}
	tok := e.srv.IssuedTokens()[0]
	get := func(method, path string, body any) any {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, e.srv.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, v)
		}
		return v
	}

	// Conversations of every media, at their end.
	convs := map[gt.Media]*gt.Conversation{}
	for _, sp := range []gt.Spec{
		{Media: gt.MediaVoice, From: "+14155550600", Queue: gt.QueueSupport, Attributes: map[string]string{"a": "b"}},
		{Media: gt.MediaCallback, From: "+14155550601", Campaign: gt.CampaignRenewals},
		{Media: gt.MediaChat, From: "c@example.org", Name: "C D", Queue: gt.QueueSupport, Body: "hi"},
		{Media: gt.MediaEmail, From: "e@example.org", Queue: gt.QueueSupport, Subject: "S", Body: "B"},
		{Media: gt.MediaMessage, MessageType: "whatsapp", From: "+33612345678", Queue: gt.QueueSupport, Body: "salut"},
		{Media: gt.MediaSocial, MessageType: "twitter", From: "@x", Queue: gt.QueueSocial, Body: "post"},
	} {
		c := e.srv.Start(sp)
		a := c.Alert(gt.AgentAlice)
		c.Connect(a)
		c.Say(a, "agent text")
		c.Transfer(a, gt.QueueBilling)
		b := c.Alert(gt.AgentBob)
		c.Connect(b)
		c.Disconnect(b)
		c.Wrapup(a, gt.CodeResolved, "n", "t")
		c.Wrapup(b, gt.CodeSale, "n2")
		if sp.Media == gt.MediaEmail {
			c.Reply("thanks")
		}
		c.Summarize("summary")
		convs[sp.Media] = c

		var body any
		_ = json.Unmarshal(c.Body(), &body)
		checkShape(t, "topic("+string(sp.Media)+")", body, typeOf[pc.Conversationeventtopicconversation]())
		checkShape(t, "queuetopic("+string(sp.Media)+")", body, typeOf[pc.Queueconversationeventtopicconversation]())
		var sdk pc.Conversationeventtopicconversation
		if err := json.Unmarshal(c.Body(), &sdk); err != nil || sdk.Participants == nil || len(*sdk.Participants) < 4 {
			t.Errorf("SDK decode of the %s topic body: %v", sp.Media, err)
		}
		path := "/api/v2/conversations/" + c.ID
		checkShape(t, "conversation("+string(sp.Media)+")", get("GET", path, nil), typeOf[pc.Conversation]())
		checkShape(t, "analytics("+string(sp.Media)+")", get("GET", "/api/v2/analytics/conversations/"+c.ID+"/details", nil),
			typeOf[pc.Analyticsconversationwithoutattributes]())
		checkShape(t, "summaries", get("GET", path+"/summaries", nil), typeOf[pc.Conversationsummariesgetresponse]())
		var recs []pc.Recordingmetadata
		checkShape(t, "recordingmetadata", get("GET", path+"/recordingmetadata", nil), reflect.TypeOf(recs))
	}
	id := func(m gt.Media) string { return convs[m].ID }
	q := pc.Conversationquery{
		Interval: ptr(time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000Z") + "/" + time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")),
		SegmentFilters: &[]pc.Segmentdetailqueryfilter{{VarType: ptr("or"), Predicates: &[]pc.Segmentdetailquerypredicate{
			{VarType: ptr("dimension"), Dimension: ptr("queueId"), Operator: ptr("matches"), Value: ptr(gt.QueueSupport)}}}},
		Paging: &pc.Pagingspec{PageSize: ptr(2), PageNumber: ptr(1)},
	}
	checkShape(t, "details query", get("POST", "/api/v2/analytics/conversations/details/query", q), typeOf[pc.Analyticsconversationqueryresponse]())
	checkShape(t, "calls", get("GET", "/api/v2/conversations/calls/"+id(gt.MediaVoice), nil), typeOf[pc.Callconversation]())
	checkShape(t, "callbacks", get("GET", "/api/v2/conversations/callbacks/"+id(gt.MediaCallback), nil), typeOf[pc.Callbackconversation]())
	checkShape(t, "chats", get("GET", "/api/v2/conversations/chats/"+id(gt.MediaChat), nil), typeOf[pc.Chatconversation]())
	checkShape(t, "emails", get("GET", "/api/v2/conversations/emails/"+id(gt.MediaEmail), nil), typeOf[pc.Emailconversation]())
	mc := get("GET", "/api/v2/conversations/messages/"+id(gt.MediaMessage), nil)
	checkShape(t, "messages", mc, typeOf[pc.Messageconversation]())
	emails := get("GET", "/api/v2/conversations/emails/"+id(gt.MediaEmail)+"/messages", nil)
	checkShape(t, "email messages", emails, typeOf[pc.Emailmessagepreviewlisting]())
	mid := emails.(map[string]any)["entities"].([]any)[0].(map[string]any)["id"].(string)
	checkShape(t, "email message", get("GET", "/api/v2/conversations/emails/"+id(gt.MediaEmail)+"/messages/"+mid, nil), typeOf[pc.Emailmessage]())
	checkShape(t, "chat messages", get("GET", "/api/v2/conversations/chats/"+id(gt.MediaChat)+"/messages", nil), typeOf[pc.Webchatmessageentitylist]())
	var ids []string
	for _, p := range mc.(map[string]any)["participants"].([]any) {
		for _, m := range p.(map[string]any)["messages"].([]any) {
			ids = append(ids, m.(map[string]any)["messageId"].(string))
		}
	}
	bulk := get("POST", "/api/v2/conversations/messages/"+id(gt.MediaMessage)+"/messages/bulk", ids)
	checkShape(t, "messages bulk", bulk, typeOf[pc.Textmessagelisting]())
	if n := len(bulk.(map[string]any)["entities"].([]any)); n != 2 {
		t.Errorf("bulk returned %d messages, want 2", n)
	}

	checkShape(t, "user", get("GET", "/api/v2/users/"+gt.AgentAlice, nil), typeOf[pc.User]())
	checkShape(t, "queue", get("GET", "/api/v2/routing/queues/"+gt.QueueSupport, nil), typeOf[pc.Queue]())
	checkShape(t, "queues", get("GET", "/api/v2/routing/queues?name=Support", nil), typeOf[pc.Queueentitylisting]())
	checkShape(t, "wrapupcode", get("GET", "/api/v2/routing/wrapupcodes/"+gt.CodeSale, nil), typeOf[pc.Wrapupcode]())
	checkShape(t, "campaign", get("GET", "/api/v2/outbound/campaigns/"+gt.CampaignRenewals, nil), typeOf[pc.Campaign]())
	ch := get("POST", "/api/v2/notifications/channels", nil)
	checkShape(t, "channel", ch, typeOf[pc.Channel]())
	chID := ch.(map[string]any)["id"].(string)
	checkShape(t, "channels", get("GET", "/api/v2/notifications/channels", nil), typeOf[pc.Channelentitylisting]())
	subs := get("PUT", "/api/v2/notifications/channels/"+chID+"/subscriptions", []map[string]string{{"id": "v2.users." + gt.AgentAlice + ".conversations"}})
	checkShape(t, "subscriptions", subs, typeOf[pc.Channeltopicentitylisting]())

	// Errors and the token.
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v2/users/nobody", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var apiErr any
	_ = json.NewDecoder(resp.Body).Decode(&apiErr)
	resp.Body.Close()
	checkShape(t, "error", apiErr, typeOf[pc.APIError]())
	resp, err = http.PostForm(e.srv.URL+"/oauth/token", map[string][]string{"grant_type": {"client_credentials"},
		"client_id": {e.srv.ClientID}, "client_secret": {e.srv.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	var tokResp any
	_ = json.NewDecoder(resp.Body).Decode(&tokResp)
	resp.Body.Close()
	checkShape(t, "token", tokResp, typeOf[pc.AuthResponse]())
}

func ptr[T any](v T) *T { return &v }
