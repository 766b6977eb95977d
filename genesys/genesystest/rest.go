package genesystest

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// conv looks up the conversation of the request's {id} (s.mu held).
func (s *Server) conv(w http.ResponseWriter, r *http.Request) *conversation {
	c := s.convs[r.PathValue("id")]
	if c == nil {
		apiError(w, http.StatusNotFound, "not.found", "conversation not found")
	}
	return c
}

// getConversation implements GET /api/v2/conversations/{id}.
func (s *Server) getConversation(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c := s.conv(w, r)
	if c == nil {
		s.mu.Unlock()
		return
	}
	body := c.render(true, s)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// mediaConversation implements GET /api/v2/conversations/{calls,callbacks,
// chats,emails,messages}/{id}: the media-specific shape with flat media
// participants (Callmediaparticipant, Emailmediaparticipant, ...).
func (s *Server) mediaConversation(m Media) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		c := s.conv(w, r)
		if c == nil {
			return
		}
		if c.media != m && !(m == MediaMessage && c.media == MediaSocial) && !(m == MediaVoice && c.media == MediaCallback) {
			apiError(w, http.StatusNotFound, "not.found", "conversation is not a "+string(m)+" conversation")
			return
		}
		full := c.render(true, s)
		parts := make([]map[string]any, 0, len(full.Participants))
		for i, jp := range full.Participants {
			var cs []jsonComm
			switch m {
			case MediaVoice:
				cs = jp.Calls
			case MediaCallback:
				cs = jp.Callbacks
			case MediaChat:
				cs = jp.Chats
			case MediaEmail:
				cs = jp.Emails
			case MediaMessage:
				cs = jp.Messages
			}
			if len(cs) == 0 {
				continue
			}
			cm := cs[len(cs)-1]
			p := c.participants[i]
			mp := map[string]any{
				"id": jp.ID, "name": jp.Name, "address": jp.Address, "startTime": jp.StartTime, "connectedTime": cm.ConnectedTime,
				"endTime": cm.DisconnectedTime, "purpose": jp.Purpose, "state": cm.State, "direction": cm.Direction,
				"disconnectType": cm.DisconnectType, "held": cm.Held, "wrapupRequired": jp.WrapupRequired, "attributes": jp.Attributes,
				"wrapup": cm.Wrapup, "provider": "PureCloud",
			}
			if p.userID != "" {
				mp["user"] = jsonRef{ID: p.userID, Name: p.name, SelfURI: "/api/v2/users/" + p.userID}
			}
			if p.queueID != "" {
				mp["queue"] = jsonRef{ID: p.queueID, Name: p.queueName, SelfURI: "/api/v2/routing/queues/" + p.queueID}
			}
			switch m {
			case MediaVoice:
				mp["ani"], mp["dnis"], mp["recording"], mp["muted"], mp["confined"] = jp.Ani, jp.Dnis, cm.Recording, false, false
			case MediaCallback:
				mp["callbackNumbers"], mp["callbackUserName"] = cm.CallbackNumbers, cm.CallbackUserName
			case MediaEmail:
				mp["subject"], mp["messagesSent"] = cm.Subject, cm.MessagesSent
			case MediaMessage:
				mp["type"], mp["toAddress"], mp["fromAddress"], mp["messages"] = cm.Type, cm.ToAddress, cm.FromAddress, cm.Messages
			}
			parts = append(parts, mp)
		}
		out := map[string]any{"id": c.id, "participants": parts, "selfUri": r.URL.Path,
			"divisions": full.Divisions, "recentTransfers": []any{}}
		if m == MediaVoice {
			out["recordingState"], out["maxParticipants"] = full.RecordingState, 10
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) emailMessages(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(w, r)
	if c == nil {
		return
	}
	if c.media != MediaEmail {
		apiError(w, http.StatusBadRequest, "bad.request", "not an email conversation")
		return
	}
	ents := []any{emailPreview(c.inbound)}
	if c.reply != nil {
		ents = append(ents, emailPreview(*c.reply))
	}
	writeJSON(w, http.StatusOK, map[string]any{"entities": ents, "pageSize": 25, "pageNumber": 1, "total": len(ents), "pageCount": 1})
}

func addr(a, name string) map[string]any { return map[string]any{"email": a, "name": name} }

func emailPreview(e email) map[string]any {
	return map[string]any{"id": e.id, "to": []any{addr(e.to, "")}, "from": addr(e.from, e.fromName), "subject": e.subject,
		"textBodyPreview": preview(e.text), "time": e.at, "attachments": []any{}, "historyIncluded": false}
}

func preview(s string) string {
	if len(s) > 100 {
		return s[:100]
	}
	return s
}

func (s *Server) emailMessage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(w, r)
	if c == nil {
		return
	}
	var e *email
	switch mid := r.PathValue("mid"); {
	case c.inbound.id == mid:
		e = &c.inbound
	case c.reply != nil && c.reply.id == mid:
		e = c.reply
	}
	if e == nil {
		apiError(w, http.StatusNotFound, "not.found", "email message not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": e.id, "to": []any{addr(e.to, "")}, "from": addr(e.from, e.fromName),
		"subject": e.subject, "textBody": e.text, "htmlBody": e.html, "time": e.at, "attachments": []any{}, "historyIncluded": false,
		"selfUri": r.URL.Path})
}

func role(p *participant) string {
	switch p.purpose {
	case "customer", "external":
		return "CUSTOMER"
	case "agent", "user":
		return "AGENT"
	}
	return "ACD"
}

func (s *Server) chatMessages(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(w, r)
	if c == nil {
		return
	}
	// As Genesys: at most maxResults (up to 100, the default) messages,
	// chronologically after (before) the message id given, in sortOrder.
	q := r.URL.Query()
	max := 100
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			apiError(w, http.StatusBadRequest, "bad.request", "maxResults must be between 1 and 100")
			return
		}
		max = n
	}
	lines := c.lines
	if a := q.Get("after"); a != "" {
		i := slices.IndexFunc(lines, func(l line) bool { return l.id == a })
		lines = lines[i+1:] // all of them when the id is unknown
	}
	if b := q.Get("before"); b != "" {
		if i := slices.IndexFunc(lines, func(l line) bool { return l.id == b }); i >= 0 {
			lines = lines[:i]
		}
	}
	lines = slices.Clone(lines)
	if q.Get("sortOrder") == "descending" {
		slices.Reverse(lines)
	}
	lines = lines[:min(max, len(lines))]
	ents := []any{}
	for _, l := range lines {
		ents = append(ents, map[string]any{
			"id": l.id, "conversation": map[string]any{"id": c.id}, "body": l.text, "bodyType": "standard", "timestamp": l.at,
			"sender": map[string]any{"id": l.from.id, "displayName": l.from.name, "role": role(l.from)},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"pageSize": max, "entities": ents, "selfUri": r.URL.Path})
}

func (s *Server) messagesBulk(w http.ResponseWriter, r *http.Request) {
	var ids []string
	if err := readJSON(r, &ids); err != nil {
		apiError(w, http.StatusBadRequest, "bad.request", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(w, r)
	if c == nil {
		return
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	ents := []any{}
	for _, l := range c.lines {
		if !want[l.id] {
			continue
		}
		dir, from, to := "inbound", c.customerAddr, c.orgAddr
		if role(l.from) != "CUSTOMER" {
			dir, from, to = "outbound", c.orgAddr, c.customerAddr
		}
		ents = append(ents, map[string]any{"id": l.id, "timestamp": l.at, "fromAddress": from, "toAddress": to, "direction": dir,
			"messengerType": c.messageType, "textBody": l.text, "status": "delivered", "conversationId": c.id})
	}
	writeJSON(w, http.StatusOK, map[string]any{"entities": ents})
}

func (s *Server) recordingMetadata(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(w, r)
	if c == nil {
		return
	}
	out := []any{}
	if c.recordingID != "" {
		end := c.end
		if end.IsZero() {
			end = now()
		}
		out = append(out, map[string]any{"id": c.recordingID, "conversationId": c.id, "media": "audio",
			"startTime": c.start.Format(time.RFC3339Nano), "endTime": end.Format(time.RFC3339Nano), "fileState": c.recordingState(),
			"selfUri": "/api/v2/conversations/" + c.id + "/recordingmetadata/" + c.recordingID})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) summaries(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(w, r)
	if c == nil {
		return
	}
	if c.summary == "" {
		apiError(w, http.StatusNotFound, "not.found", "no summary for this conversation")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"conversation": map[string]any{"id": c.id, "selfUri": "/api/v2/conversations/" + c.id},
		"summary": map[string]any{"id": newID(), "text": c.summary, "status": "COMPLETE", "mediaType": analyticsMedia(c.media),
			"language": "en-us", "dateCreated": c.end, "confidence": 0.92},
		"sessionSummaries": []any{},
	})
}

func analyticsMedia(m Media) string {
	switch m {
	case MediaSocial:
		return "message"
	}
	return string(m)
}

// analyticsDetails implements GET /api/v2/analytics/conversations/{id}/details
// (Analyticsconversationwithoutattributes): per participant, sessions with
// segments and metrics (milliseconds).
func (s *Server) analyticsDetails(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(w, r)
	if c == nil {
		return
	}
	ms := func(a, b time.Time) int64 {
		if a.IsZero() || b.IsZero() || b.Before(a) {
			return 0
		}
		return b.Sub(a).Milliseconds()
	}
	var parts []any
	for _, p := range c.participants {
		var sessions []any
		for _, cm := range p.comms {
			sess := map[string]any{"mediaType": analyticsMedia(cm.kind), "sessionId": cm.id, "direction": cm.direction,
				"provider": "PureCloud"}
			if cm.kind == MediaMessage || cm.kind == MediaSocial {
				sess["messageType"] = c.messageType
			}
			if cust := p.purpose == "customer"; cust {
				sess["ani"], sess["dnis"] = telURI(c.customerAddr), telURI(c.orgAddr)
				sess["remote"] = p.name
			}
			if c.campaign != "" {
				sess["outboundCampaignId"] = c.campaign
			}
			if c.recordingID != "" && cm.kind == MediaVoice {
				sess["recording"] = true
			}
			var segs, metrics []any
			seg := func(typ string, a, b time.Time, extra map[string]any) {
				if a.IsZero() {
					return
				}
				m := map[string]any{"segmentType": typ, "segmentStart": a}
				if !b.IsZero() {
					m["segmentEnd"] = b
				}
				if p.queueID != "" {
					m["queueId"] = p.queueID
				}
				for k, v := range extra {
					m[k] = v
				}
				segs = append(segs, m)
			}
			metric := func(name string, v int64, at time.Time) {
				if v > 0 && !at.IsZero() {
					metrics = append(metrics, map[string]any{"name": name, "value": v, "emitDate": at})
				}
			}
			switch p.purpose {
			case "agent", "user":
				alertEnd := cm.connected
				if alertEnd.IsZero() {
					alertEnd = cm.discon
				}
				seg("alert", cm.alerting, alertEnd, nil)
				metric("tAlert", ms(cm.alerting, alertEnd), alertEnd)
				if !cm.connected.IsZero() {
					seg("interact", cm.connected, cm.discon, map[string]any{"disconnectType": analyticsDisconnect(cm.dtype)})
					metric("tAnswered", ms(cm.alerting, cm.connected), cm.connected)
					metric("tTalk", ms(cm.connected, cm.discon), cm.discon)
					metric("tTalkComplete", ms(cm.connected, cm.discon), cm.discon)
				}
				switch cm.dtype {
				case "transfer":
					metrics = append(metrics, map[string]any{"name": "nTransferred", "value": 1, "emitDate": cm.discon},
						map[string]any{"name": "nBlindTransferred", "value": 1, "emitDate": cm.discon})
				case "transfer.consult":
					metrics = append(metrics, map[string]any{"name": "nTransferred", "value": 1, "emitDate": cm.discon},
						map[string]any{"name": "nConsultTransferred", "value": 1, "emitDate": cm.discon})
				}
				if w := cm.wrapup; w != nil {
					end := *w.EndTime
					start := cm.acwStart
					if start.IsZero() {
						start = cm.discon
					}
					seg("wrapup", start, end, map[string]any{"wrapUpCode": w.Code, "wrapUpNote": w.Notes, "wrapUpTags": w.Tags})
					metric("tAcw", ms(start, end), end)
					metric("tHandle", ms(cm.connected, end), end)
				}
			case "acd":
				seg("interact", cm.connected, cm.discon, map[string]any{"disconnectType": analyticsDisconnect(cm.dtype)})
				metric("tAcd", ms(cm.connected, cm.discon), cm.discon)
			default:
				seg("interact", cm.connected, cm.discon, map[string]any{"disconnectType": analyticsDisconnect(cm.dtype)})
			}
			sess["segments"] = segs
			if metrics != nil {
				sess["metrics"] = metrics
			}
			sessions = append(sessions, sess)
		}
		pj := map[string]any{"participantId": p.id, "participantName": p.name, "purpose": p.purpose, "sessions": sessions}
		if p.userID != "" {
			pj["userId"] = p.userID
		}
		parts = append(parts, pj)
	}
	out := map[string]any{"conversationId": c.id, "conversationStart": c.start, "originatingDirection": c.direction,
		"divisionIds": []string{homeDivision.ID}, "participants": parts}
	if !c.end.IsZero() {
		out["conversationEnd"] = c.end
	}
	if strings.HasPrefix(c.direction, "out") {
		out["conversationInitiator"] = "agent"
	}
	writeJSON(w, http.StatusOK, out)
}

// transcriptURL implements GET /api/v2/speechandtextanalytics/
// conversations/{id}/communications/{cid}/transcripturl (TranscriptUrl): for
// the customer's voice communication of a voice or callback conversation
// with lines (Say), a pre-signed URL of the transcript document; else 404,
// as when speech analytics is not enabled or nothing was transcribed.
func (s *Server) transcriptURL(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(w, r)
	if c == nil {
		return
	}
	if cm := s.customerVoice(c, r.PathValue("cid")); cm == nil || len(c.lines) == 0 {
		apiError(w, http.StatusNotFound, "not.found", "no transcript for this communication")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"url": s.URL + "/transcripts/" + c.id + "/" + r.PathValue("cid") +
		"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=" + transcriptSig(c.id, r.PathValue("cid"))})
}

func (s *Server) customerVoice(c *conversation, cid string) *comm {
	if c.media != MediaVoice && c.media != MediaCallback {
		return nil
	}
	for _, p := range c.participants {
		if p.purpose != "customer" {
			continue
		}
		for _, cm := range p.comms {
			if cm.id == cid && cm.kind == MediaVoice {
				return cm
			}
		}
	}
	return nil
}

func transcriptSig(id, cid string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte("emulator/"+id+"/"+cid)))
}

// transcriptDoc serves the pre-signed transcript document, as S3 would: no
// API credentials (a request carrying an Authorization header as well as
// the URL's signature is refused, 400), the right signature (else 403).
// The document has the Speech and Text Analytics transcript shape: phrases
// with text, startTimeMs (epoch milliseconds) and participantPurpose
// (external: the customer, internal: the agent).
func (s *Server) transcriptDoc(w http.ResponseWriter, r *http.Request) {
	id, cid := r.PathValue("id"), r.PathValue("cid")
	if r.Header.Get("Authorization") != "" {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message></Error>`)
		return
	}
	if r.URL.Query().Get("X-Amz-Signature") != transcriptSig(id, cid) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code></Error>`)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.convs[id]
	if c == nil || s.customerVoice(c, cid) == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	phrases := []any{}
	for i, l := range c.lines {
		purpose := "internal"
		if l.from != nil && l.from.purpose == "customer" {
			purpose = "external"
		}
		phrases = append(phrases, map[string]any{"text": l.text, "decoratedText": l.text, "stability": 1, "confidence": 0.9,
			"startTimeMs": l.at.UnixMilli(), "duration": map[string]any{"milliseconds": 1500}, "participantPurpose": purpose, "phraseIndex": i})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"organizationId": "emulated-org", "conversationId": c.id, "communicationId": cid, "recordingId": c.recordingID,
		"transcripts": []any{map[string]any{"transcriptId": newID(), "language": "en-US", "engineProvider": "GENESYS",
			"startTime": c.start.UnixMilli(), "phrases": phrases}},
		"startTime": c.start.UnixMilli(),
	})
}

// analyticsDisconnect is a disconnect type as the analytics API names it
// ("consultTransfer"), from the conversation APIs' name ("transfer.consult").
func analyticsDisconnect(dtype string) string {
	switch dtype {
	case "transfer.consult":
		return "consultTransfer"
	case "transfer.conference":
		return "conferenceTransfer"
	case "transfer.forward":
		return "forwardTransfer"
	case "transfer.noanswer":
		return "noAnswerTransfer"
	case "transfer.notavailable":
		return "notAvailableTransfer"
	case "transfer.donotdisturb":
		return "dndTransfer"
	case "endpoint.donotdisturb":
		return "dndEndpoint"
	case "transport.failure":
		return "transportFailure"
	}
	return dtype
}
