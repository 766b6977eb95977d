package match_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/match/internal/zdfake"
	"github.com/cxplay/ctikit/match/matchtest"
)

// dirWith loads matchtest users into a fake Zendesk directory.
func dirWith(users []matchtest.User) *zdfake.Dir {
	d := &zdfake.Dir{}
	for _, u := range users {
		d.AddUser(zdfake.User{ID: u.ID, Name: u.Name, Email: u.Email, Phone: u.Phone, ExternalID: u.ExternalID, UpdatedAt: u.UpdatedAt})
		for _, t := range u.Tickets {
			d.AddTicket(zdfake.Ticket{ID: t.ID, Subject: t.Subject, Status: t.Status, RequesterID: u.ID, UpdatedAt: t.UpdatedAt})
		}
	}
	return d
}

func newZendesk(t testing.TB, s match.Searcher, opts ...match.Option) *match.Zendesk {
	t.Helper()
	z, err := match.NewZendesk(s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestZendeskConformance(t *testing.T) {
	matchtest.TestMatcher(t, func(t *testing.T, users []matchtest.User) cti.Matcher {
		return newZendesk(t, dirWith(users), match.WithRegion("US"))
	})
}

func TestCacheConformance(t *testing.T) {
	matchtest.TestMatcher(t, func(t *testing.T, users []matchtest.User) cti.Matcher {
		return match.Cache(match.CacheOptions{})(newZendesk(t, dirWith(users), match.WithRegion("US")))
	})
}

func TestFirstConformance(t *testing.T) {
	matchtest.TestMatcher(t, func(t *testing.T, users []matchtest.User) cti.Matcher {
		empty := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			return cti.Result{}, ctx.Err()
		})
		return match.First(empty, newZendesk(t, dirWith(users), match.WithRegion("US")))
	})
}

var t0 = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

func user(id int64, phone string) zdfake.User {
	return zdfake.User{ID: id, Name: fmt.Sprint("User ", id), Phone: phone, UpdatedAt: t0.Add(time.Duration(id) * time.Minute)}
}

func query(v string) cti.Query {
	return cti.Query{Identity: cti.Identity{Kind: cti.IdentifyPhone, Value: v}}
}

// TestPhoneStoredFormats: whatever format the number was saved in, the
// caller's E.164 finds it, with a single search.
func TestPhoneStoredFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		region, stored, caller string
	}{
		{"US", "+14155551212", "+14155551212"},
		{"US", "+1 415-555-1212", "+14155551212"},
		{"US", "(415) 555-1212", "tel:+14155551212"},
		{"US", "4155551212", "sip:+14155551212@10.0.0.1"},
		{"US", "14155551212", "+14155551212"},
		{"US", "415-555-1212", "+14155551212"},
		{"US", "415.555.1212", "+14155551212"},
		{"US", "+1 (415) 555-1212", "+14155551212"},
		{"US", "+14155551212", "(415) 555-1212"},
		{"FR", "06 12 34 56 78", "+33612345678"},
		{"FR", "0612345678", "33612345678"},
		{"US", "+33 6 12 34 56 78", "+33612345678"}, // foreign number, US account
		{"DE", "+49 1511 2345678", "015112345678"},
		{"US", "+1 415 555 1212", "+14155551212"},
		{"US", "+1-415-555-1212", "+14155551212"},
		{"US", "1-415-555-1212", "+14155551212"},
		{"US", "1 (415) 555-1212", "+14155551212"},
		{"GB", "+44 (0)20 7946 0958", "+442079460958"},
		{"FR", "+33 (0)6 12 34 56 78", "+33612345678"},
	}
	for _, tt := range tests {
		t.Run(tt.stored+"<-"+tt.caller, func(t *testing.T) {
			t.Parallel()
			d := &zdfake.Dir{}
			d.AddUser(user(1, tt.stored), user(2, "+19998887777"))
			z := newZendesk(t, d, match.WithRegion(tt.region))
			res, err := z.Match(context.Background(), query(tt.caller))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Records) != 1 || res.Records[0].ID != 1 {
				t.Fatalf("got %+v, want user 1; queries %q", res.Records, d.Queries())
			}
			if q := d.Queries(); len(q) != 1 || strings.Count(q[0], "phone:") < 5 {
				t.Errorf("searches = %q, want one query with the phone formats OR'ed", q)
			}
		})
	}
}

func TestPhoneNotSearched(t *testing.T) {
	t.Parallel()
	d := &zdfake.Dir{}
	d.AddUser(user(1, "anonymous"), user(2, "12"))
	z := newZendesk(t, d, match.WithRegion("US"))
	for _, v := range []string{"anonymous", "sip:anonymous@anonymous.invalid", "Restricted", "12", "abc", strings.Repeat("5", 300)} {
		res, err := z.Match(context.Background(), query(v))
		if err != nil && !errors.Is(err, cti.ErrNoMatch) {
			t.Errorf("Match(%.20q): %v, want nil or ErrNoMatch", v, err)
		}
		if len(res.Records) != 0 {
			t.Errorf("Match(%.20q) found %v", v, res.Records)
		}
	}
	if q := d.Queries(); len(q) != 0 {
		t.Errorf("searches made: %q, want none", q)
	}
}

func TestPhoneUnparseableSearchedAsIs(t *testing.T) {
	t.Parallel()
	d := &zdfake.Dir{}
	d.AddUser(user(1, "72345"))
	z := newZendesk(t, d, match.WithRegion("US"))
	res, err := z.Match(context.Background(), query("72345")) // SMS short code
	if err != nil || len(res.Records) != 1 {
		t.Fatalf("Match(short code) = %+v, %v; want user 1", res, err)
	}
	if q := d.Queries(); len(q) != 1 || q[0] != `users: phone:"72345"` {
		t.Errorf("searches = %q", q)
	}
}

func TestEmailLowercased(t *testing.T) {
	t.Parallel()
	d := &zdfake.Dir{}
	z := newZendesk(t, d)
	if _, err := z.Match(context.Background(), cti.Query{Identity: cti.Identity{Kind: cti.IdentifyEmail, Value: " Jane@Example.COM "}}); err != nil {
		t.Fatal(err)
	}
	if q := d.Queries(); len(q) != 1 || q[0] != `users: email:"jane@example.com"` {
		t.Errorf("searches = %q", q)
	}
	for _, bad := range []string{"jane", "jane@", "@example.com", `ja"ne@example.com`} {
		_, err := z.Match(context.Background(), cti.Query{Identity: cti.Identity{Kind: cti.IdentifyEmail, Value: bad}})
		if !errors.Is(err, cti.ErrNoMatch) {
			t.Errorf("email %q: err = %v, want ErrNoMatch (skipped)", bad, err)
		}
	}
}

// searcherOnly hides the IdentityLister of a Searcher.
type searcherOnly struct{ match.Searcher }

func TestSocial(t *testing.T) {
	t.Parallel()
	d := &zdfake.Dir{}
	d.AddUser(
		zdfake.User{ID: 1, Name: "Fan", UpdatedAt: t0, Identities: []match.UserIdentity{{Type: "twitter", Value: "acme_fan"}}},
		zdfake.User{ID: 2, Name: "Other", Notes: "knows acme_fan from the club", UpdatedAt: t0.Add(time.Hour)},
		zdfake.User{ID: 3, Name: "FB", UpdatedAt: t0, Identities: []match.UserIdentity{{Type: "facebook", Value: "1000123"}}},
		zdfake.User{ID: 4, Name: "WA", Phone: "+33612345678", UpdatedAt: t0},
	)
	tw := cti.Identity{Kind: cti.IdentifySocial, Channel: cti.ChannelTwitter, Value: "@Acme_Fan"}
	fb := cti.Identity{Kind: cti.IdentifySocial, Channel: cti.ChannelFacebook, Value: "1000123"}
	wa := cti.Identity{Kind: cti.IdentifySocial, Channel: cti.ChannelWhatsApp, Value: "33612345678"}
	tests := []struct {
		name   string
		s      match.Searcher
		id     cti.Identity
		want   string
		region string
	}{
		{"twitter verified", d, tw, "[1]", ""},
		{"twitter unverified", searcherOnly{d}, tw, "[2 1]", ""},
		{"facebook", d, fb, "[3]", ""},
		{"twitter handle on facebook", d, cti.Identity{Kind: cti.IdentifySocial, Channel: cti.ChannelFacebook, Value: "acme_fan"}, "[]", ""},
		{"whatsapp is a phone", d, wa, "[4]", ""},
		// A WhatsApp id is international: in an Italian account,
		// 33612345678 reads nationally as an Italian mobile.
		{"whatsapp is international", d, wa, "[4]", "IT"},
	}
	for _, tt := range tests {
		res, err := newZendesk(t, tt.s, match.WithRegion(cmp.Or(tt.region, "US"))).Match(context.Background(), cti.Query{Identity: tt.id})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []int64
		for _, r := range res.Records {
			got = append(got, r.ID)
		}
		if fmt.Sprint(got) != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, got, tt.want)
		}
	}
}

func attr(target, v string) cti.Query {
	return cti.Query{Identity: cti.Identity{Kind: cti.IdentifyAttribute, Attribute: "A", Target: target, Value: v}}
}

func TestAttributes(t *testing.T) {
	t.Parallel()
	d := &zdfake.Dir{}
	d.AddOrg(zdfake.Org{ID: 70, Name: "Acme", ExternalID: "ORG-1", UpdatedAt: t0}, zdfake.Org{ID: 71, Name: "Other", ExternalID: "ORG-2", UpdatedAt: t0})
	d.AddUser(
		zdfake.User{ID: 1, Name: "A", ExternalID: "CRM-1", OrganizationID: 70, Fields: map[string]string{"plan_code": "GOLD-7"}, UpdatedAt: t0},
		zdfake.User{ID: 2, Name: "B", Email: "b@example.com", Phone: "+14155550002", OrganizationID: 70, UpdatedAt: t0.Add(time.Hour)},
		zdfake.User{ID: 3, Name: "C", OrganizationID: 71, UpdatedAt: t0},
	)
	d.AddTicket(zdfake.Ticket{ID: 900, Subject: "Broken", Status: "solved", RequesterID: 2, UpdatedAt: t0})
	z := newZendesk(t, d, match.WithRegion("US"))
	tests := []struct {
		q       cti.Query
		want    string
		wantErr error
	}{
		{attr(cti.TargetExternalID, "CRM-1"), "[user/1]", nil},
		{attr(cti.TargetExternalID, "crm-1"), "[]", nil}, // external ids are exact
		{attr(cti.TargetEmail, "B@example.com"), "[user/2]", nil},
		{attr(cti.TargetPhone, "(415) 555-0002"), "[user/2]", nil},
		{attr("user_field.plan_code", "GOLD-7"), "[user/1]", nil},
		{attr(cti.TargetOrganization, "ORG-1"), "[user/2 user/1]", nil},
		{attr(cti.TargetOrganization, "ORG-9"), "[]", nil},
		{attr(cti.TargetTicketID, "900"), "[ticket/900]", nil},
		{attr(cti.TargetTicketID, "#900"), "[ticket/900]", nil},
		{attr(cti.TargetTicketID, "901"), "[]", nil},
		{attr(cti.TargetTicketID, "nine hundred"), "[]", cti.ErrNoMatch},
		{attr(cti.TargetTicketID, "99999999999999999999999"), "[]", cti.ErrNoMatch},
		{attr("user_field.bad key", "x"), "[]", cti.ErrInvalid},
		{attr("nowhere", "x"), "[]", cti.ErrInvalid},
		{attr(cti.TargetExternalID, strings.Repeat("x", match.MaxValue+1)), "[]", cti.ErrNoMatch},
		{attr(cti.TargetExternalID, `x" external_id:"y`), "[]", cti.ErrNoMatch},
	}
	for _, tt := range tests {
		res, err := z.Match(context.Background(), tt.q)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", tt.q.Identity.Key()[:min(60, len(tt.q.Identity.Key()))], err, tt.wantErr)
		}
		got := []string{}
		for _, r := range res.Records {
			got = append(got, r.Ref())
		}
		if fmt.Sprint(got) != tt.want {
			t.Errorf("%s: got %v, want %s", tt.q.Identity.Key(), got, tt.want)
		}
	}
}

func TestSearcherFailureIsAnError(t *testing.T) {
	t.Parallel()
	d := &zdfake.Dir{Fail: &cti.UpstreamError{Service: "zendesk", Op: "search", Status: 503}}
	z := newZendesk(t, d)
	_, err := z.Match(context.Background(), query("+14155551212"))
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 503 || !cti.IsRetryable(err) || errors.Is(err, cti.ErrNoMatch) {
		t.Errorf("err = %v, want the retryable upstream error, not a no-match", err)
	}
}

func TestMoreFromSearcher(t *testing.T) {
	t.Parallel()
	d := &zdfake.Dir{}
	for i := range zdfake.PageSize + 3 {
		d.AddUser(user(int64(i+1), "+14155551212"))
	}
	res, err := newZendesk(t, d).Match(context.Background(), query("+14155551212"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != cti.MaxResults || !res.More || res.Records[0].ID != zdfake.PageSize+3 {
		t.Errorf("got %d records, more %v, first %d", len(res.Records), res.More, res.Records[0].ID)
	}
}

func TestFinish(t *testing.T) {
	t.Parallel()
	u := func(id int64, h int) cti.Record {
		return cti.Record{Kind: cti.KindUser, ID: id, UpdatedAt: t0.Add(time.Duration(h) * time.Hour)}
	}
	res := match.Finish([]cti.Record{u(1, 1), u(2, 3), u(3, 3), u(2, 3), u(4, 0), u(1, 5)}, false)
	var got []int64
	for _, r := range res.Records {
		got = append(got, r.ID)
	}
	if fmt.Sprint(got) != "[1 3 2 4]" || res.More {
		t.Errorf("Finish = %v more %v, want [1 3 2 4] (ties by id desc, duplicates removed, even apart)", got, res.More)
	}
	if r := match.Finish(nil, true); r.Records != nil || !r.More {
		t.Errorf("Finish(nil, true) = %+v", r)
	}
}

func TestNewZendeskErrors(t *testing.T) {
	t.Parallel()
	if _, err := match.NewZendesk(nil); err == nil {
		t.Error("NewZendesk(nil) succeeded")
	}
	if _, err := match.NewZendesk(&zdfake.Dir{}, match.WithRegion("Narnia")); !errors.Is(err, cti.ErrInvalid) {
		t.Errorf("bad region: %v", err)
	}
	if _, err := match.NewZendesk(&zdfake.Dir{}, match.WithConcurrency(0)); !errors.Is(err, cti.ErrInvalid) {
		t.Errorf("concurrency 0: %v", err)
	}
}
