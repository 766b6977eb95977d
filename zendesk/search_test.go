package zendesk

import (
	"strings"
	"testing"
)

// searchBody is a search response as Zendesk sends it: one result of each
// type CTI reads, and one it skips (a group; its "name" is an object here
// to check that an unknown type's fields cannot fail the decode).
const searchBody = `{"results":[
{"id":11,"url":"https://x.zendesk.com/api/v2/users/11.json","name":"Jane Doe","email":"jane@example.com","phone":"+14155550102","shared_phone_number":false,"external_id":null,"role":"end-user","role_type":null,"organization_id":7,"tags":["vip"],"notes":"","details":"","user_fields":{"tier":"gold"},"active":true,"suspended":false,"verified":true,"time_zone":"UTC","iana_time_zone":"Etc/UTC","locale":"en-US","locale_id":1,"photo":null,"last_login_at":null,"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-11-02T03:04:05Z","result_type":"user"},
{"id":21,"url":"https://x.zendesk.com/api/v2/tickets/21.json","subject":"Help","description":"d","status":"open","requester_id":11,"assignee_id":null,"organization_id":7,"tags":["a"],"custom_fields":[{"id":5,"value":"x"}],"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-11-03T03:04:05Z","result_type":"ticket"},
{"id":7,"url":"https://x.zendesk.com/api/v2/organizations/7.json","name":"Acme","external_id":"acme-1","tags":[],"notes":"","details":"","organization_fields":{},"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-11-01T03:04:05Z","result_type":"organization"},
{"id":3,"name":{"odd":true},"result_type":"group"}
],"count":4,"next_page":"https://x.zendesk.com/api/v2/search.json?page=2","previous_page":null}`

func TestDecodeSearch(t *testing.T) {
	res, err := decodeSearch([]byte(searchBody))
	if err != nil {
		t.Fatal(err)
	}
	if !res.More || res.Count != 4 {
		t.Errorf("count %d more %v", res.Count, res.More)
	}
	if len(res.Users) != 1 || res.Users[0].ID != 11 || res.Users[0].Phone != "+14155550102" || res.Users[0].OrganizationID != 7 ||
		res.Users[0].UserFields["tier"] != "gold" || res.Users[0].UpdatedAt.Month() != 11 {
		t.Errorf("users %+v", res.Users)
	}
	if len(res.Tickets) != 1 || res.Tickets[0].ID != 21 || res.Tickets[0].Status != "open" || res.Tickets[0].RequesterID != 11 {
		t.Errorf("tickets %+v", res.Tickets)
	}
	if len(res.Organizations) != 1 || res.Organizations[0].ID != 7 || res.Organizations[0].ExternalID != "acme-1" {
		t.Errorf("organizations %+v", res.Organizations)
	}
	// A user that does not decode is an error, not a skipped result.
	if _, err := decodeSearch([]byte(`{"results":[{"id":"eleven","result_type":"user"}],"count":1}`)); err == nil {
		t.Error("a malformed user: no error")
	}
	if _, err := decodeSearch([]byte(`{"results":[{"id":1,`)); err == nil {
		t.Error("truncated body: no error")
	}
}

// BenchmarkDecodeSearch: the decode of a one-user answer, as a CTI phone
// search gets it, on the pop's path.
func BenchmarkDecodeSearch(b *testing.B) {
	body := []byte(`{"results":[` + searchBody[len(`{"results":[`)+1:strings.Index(searchBody, `"result_type":"user"}`)+len(`"result_type":"user"}`)] + `],"count":1,"next_page":null}`)
	if res, err := decodeSearch(body); err != nil || len(res.Users) != 1 {
		b.Fatal(res, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeSearch(body); err != nil {
			b.Fatal(err)
		}
	}
}
