package zendesktest

import (
	"html"
	"slices"
	"strconv"
	"strings"
	"time"
)

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func (s *Server) apiURL(kind string, id int64) string {
	return s.URL + "/api/v2/" + kind + "/" + strconv.FormatInt(id, 10) + ".json"
}

func (s *Server) userJSON(u *User) map[string]any {
	tags := u.Tags
	if tags == nil {
		tags = []string{}
	}
	fields := u.UserFields
	if fields == nil {
		fields = map[string]any{}
	}
	shared := u.Phone != "" && len(s.phoneHolders(u.Phone)) > 1
	return map[string]any{
		"id": u.ID, "url": s.apiURL("users", u.ID), "name": u.Name, "email": nullable(u.Email),
		"phone": nullable(u.Phone), "shared_phone_number": shared, "external_id": nullable(u.ExternalID),
		"role": u.Role, "role_type": nil, "organization_id": nullID(u.OrganizationID), "tags": tags,
		"notes": u.Notes, "details": "", "user_fields": fields, "active": true, "suspended": u.Suspended,
		"verified": u.Email != "", "time_zone": "UTC", "iana_time_zone": "Etc/UTC", "locale": "en-US",
		"locale_id": 1, "photo": nil, "last_login_at": nil, "created_at": ts(u.CreatedAt),
		"updated_at": ts(u.UpdatedAt),
	}
}

func (s *Server) identityJSON(u *User, i Identity) map[string]any {
	return map[string]any{
		"id": i.ID, "url": s.URL + "/api/v2/users/" + strconv.FormatInt(u.ID, 10) + "/identities/" + strconv.FormatInt(i.ID, 10) + ".json",
		"user_id": u.ID, "type": i.Type, "value": i.Value, "verified": i.Verified, "primary": i.Primary,
		"created_at": ts(u.CreatedAt), "updated_at": ts(u.UpdatedAt),
	}
}

func (s *Server) orgJSON(o *Organization) map[string]any {
	tags := o.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"id": o.ID, "url": s.apiURL("organizations", o.ID), "name": o.Name, "external_id": nullable(o.ExternalID),
		"tags": tags, "domain_names": []string{}, "details": nil, "notes": nil, "group_id": nil,
		"shared_tickets": false, "shared_comments": false, "organization_fields": map[string]any{},
		"created_at": ts(o.CreatedAt), "updated_at": ts(o.UpdatedAt),
	}
}

func (s *Server) ticketJSON(t *Ticket) map[string]any {
	ids := make([]int64, 0, len(t.CustomFields))
	for id := range t.CustomFields {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	fields := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		fields = append(fields, map[string]any{"id": id, "value": t.CustomFields[id]})
	}
	tags := t.Tags
	if tags == nil {
		tags = []string{}
	}
	via := map[string]any{"channel": t.ViaChannel, "source": map[string]any{"from": map[string]any{}, "to": map[string]any{}, "rel": nil}}
	if t.ViaID != 0 {
		rel := map[int]string{44: "voicemail", 45: "inbound", 46: "outbound"}[t.ViaID]
		via["source"].(map[string]any)["rel"] = rel
	}
	return map[string]any{
		"id": t.ID, "url": s.apiURL("tickets", t.ID), "external_id": nullable(t.ExternalID), "via": via,
		"created_at": ts(t.CreatedAt), "updated_at": ts(t.UpdatedAt), "type": nullable(t.Type),
		"subject": t.Subject, "raw_subject": t.Subject, "description": t.Description,
		"priority": nullable(t.Priority), "status": t.Status, "recipient": nil,
		"requester_id": t.RequesterID, "submitter_id": t.SubmitterID, "assignee_id": nullID(t.AssigneeID),
		"organization_id": nullID(t.OrganizationID), "group_id": nil, "collaborator_ids": []int64{},
		"follower_ids": []int64{}, "email_cc_ids": []int64{}, "forum_topic_id": nil, "problem_id": nil,
		"has_incidents": false, "is_public": slices.ContainsFunc(t.Comments, func(c Comment) bool { return c.Public }),
		"due_at": nil, "tags": tags, "custom_fields": fields, "fields": fields, "satisfaction_rating": nil,
		"sharing_agreement_ids": []int64{}, "allow_channelback": false, "allow_attachments": true,
	}
}

func (s *Server) commentJSON(c Comment) map[string]any {
	body := c.Body
	htmlBody := c.HTMLBody
	if htmlBody == "" {
		htmlBody = "<div class=\"zd-comment\"><p>" + strings.ReplaceAll(html.EscapeString(body), "\n", "<br>") + "</p></div>"
	}
	if body == "" {
		body = stripTags(c.HTMLBody)
	}
	m := map[string]any{
		"id": c.ID, "type": c.Type, "author_id": c.AuthorID, "body": body, "html_body": htmlBody,
		"plain_body": body, "public": c.Public, "attachments": []any{}, "audit_id": c.ID + 1,
		"via": map[string]any{"channel": "api"}, "metadata": map[string]any{"system": map[string]any{}},
		"created_at": ts(c.CreatedAt),
	}
	if c.Data != nil {
		m["data"] = c.Data
	}
	if len(c.Attachments) > 0 {
		atts := make([]map[string]any, len(c.Attachments))
		for i, a := range c.Attachments {
			atts[i] = s.attachmentJSON(a)
		}
		m["attachments"] = atts
	}
	return m
}

func stripTags(h string) string {
	var b strings.Builder
	in := false
	for _, r := range h {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return html.UnescapeString(b.String())
}
