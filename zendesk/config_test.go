package zendesk_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/zendesk"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestConfigFromLookup(t *testing.T) {
	t.Parallel()
	_, err := zendesk.ConfigFromLookup(lookup(nil))
	for _, name := range []string{"ZENDESK_URL", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Fatalf("error %v does not name %s", err, name)
		}
	}
	if !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("not ErrInvalid: %v", err)
	}
	_, err = zendesk.ConfigFromLookup(lookup(map[string]string{"ZENDESK_URL": "acme", "ZENDESK_EMAIL": "a@b.co"}))
	if err == nil || !strings.Contains(err.Error(), "ZENDESK_API_TOKEN") || strings.Contains(err.Error(), "ZENDESK_EMAIL") {
		t.Fatalf("only the token is missing: %v", err)
	}
	c, err := zendesk.ConfigFromLookup(lookup(map[string]string{"ZENDESK_URL": "acme", "ZENDESK_OAUTH_TOKEN": "tok"}))
	if err != nil || c.OAuthToken != "tok" {
		t.Fatalf("oauth: %+v, %v", c, err)
	}
}

func TestConfigBaseURL(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"acme":                              "https://acme.zendesk.com/api/v2",
		"Acme":                              "https://acme.zendesk.com/api/v2",
		"acme.zendesk.com":                  "https://acme.zendesk.com/api/v2",
		"https://acme.zendesk.com/":         "https://acme.zendesk.com/api/v2",
		"https://acme.zendesk.com/api/v2":   "https://acme.zendesk.com/api/v2",
		"http://127.0.0.1:8080":             "http://127.0.0.1:8080/api/v2",
		"https://support.example.com/zd/":   "https://support.example.com/zd/api/v2",
		"https://acme.zendesk.com/api/v2/ ": "https://acme.zendesk.com/api/v2",
	}
	for in, want := range good {
		got, err := zendesk.Config{URL: in}.BaseURL()
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-acme", "ftp://acme.zendesk.com", "https://u:p@acme.zendesk.com", "https://acme.zendesk.com/?x=1"} {
		if _, err := (zendesk.Config{URL: in}).BaseURL(); !errors.Is(err, cti.ErrInvalid) {
			t.Errorf("%q: %v", in, err)
		}
	}
	u := "https://u:hunter2@acme.zendesk.com"
	if _, err := (zendesk.Config{URL: u}).BaseURL(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("credentials in the URL leak: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	bad := []zendesk.Config{
		{URL: "acme"},
		{URL: "acme", Email: "a@b.co"},
		{URL: "acme", APIToken: "t"},
		{URL: "acme", Email: "a@b.co/token", APIToken: "t"},
		{URL: "acme", Email: "nope", APIToken: "t"},
		{URL: "acme", Email: "a@b.co", APIToken: "two words"},
		{URL: "acme", Email: "a@b.co", APIToken: "t", OAuthToken: "o"},
	}
	for _, c := range bad {
		if err := c.Validate(); !errors.Is(err, cti.ErrInvalid) {
			t.Errorf("%v: %v", c, err)
		}
		if _, err := zendesk.New(c); err == nil {
			t.Errorf("New(%v) accepted it", c)
		}
	}
	c := zendesk.Config{URL: "acme", Email: "a@b.co", APIToken: "sekrit-token"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "sekrit") {
			t.Fatalf("printed the token: %s", s)
		}
	}
	if _, err := zendesk.New(c, zendesk.WithRetries(-1)); err == nil || !strings.Contains(err.Error(), "WithRetries") {
		t.Fatalf("bad option: %v", err)
	}
}
