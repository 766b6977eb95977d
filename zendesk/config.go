package zendesk

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/cxplay/ctikit/cti"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvURL        = "ZENDESK_URL"
	EnvEmail      = "ZENDESK_EMAIL"
	EnvAPIToken   = "ZENDESK_API_TOKEN"
	EnvOAuthToken = "ZENDESK_OAUTH_TOKEN"
)

// Config says which Zendesk account to talk to and how to authenticate.
//
// Exactly one way to authenticate must be given: an API token (Email and
// APIToken, sent as Basic "email/token:TOKEN") or an OAuth access token
// (OAuthToken, sent as "Bearer TOKEN"). The zero Config is invalid; call
// Validate (New does). Config's String, GoString and LogValue never print
// the secrets.
type Config struct {
	// URL is the account: a subdomain ("acme"), a host ("acme.zendesk.com")
	// or a URL ("https://acme.zendesk.com", "http://127.0.0.1:8080" for an
	// emulator). A trailing "/api/v2" is accepted and ignored.
	URL string
	// Email is the address of the user the API token belongs to.
	Email string
	// APIToken is a Zendesk API token (Admin Center > Apps and integrations > APIs).
	APIToken string
	// OAuthToken is an OAuth access token; used instead of Email/APIToken.
	OAuthToken string
}

var subdomainRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$`)

// ConfigFromEnv reads ZENDESK_URL, ZENDESK_EMAIL and ZENDESK_API_TOKEN (or
// ZENDESK_OAUTH_TOKEN instead of the last two) from the environment. The
// error names every missing or invalid variable and what to put in it.
func ConfigFromEnv() (Config, error) { return ConfigFromLookup(os.LookupEnv) }

// ConfigFromLookup is ConfigFromEnv with a custom lookup (for tests).
func ConfigFromLookup(lookup func(string) (string, bool)) (Config, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	cfg := Config{URL: get(EnvURL), Email: get(EnvEmail), APIToken: get(EnvAPIToken), OAuthToken: get(EnvOAuthToken)}
	var errs []error
	if cfg.URL == "" {
		errs = append(errs, &cti.ConfigError{Path: EnvURL, Reason: "not set: set it to your Zendesk subdomain (acme) or URL (https://acme.zendesk.com)"})
	}
	if cfg.OAuthToken == "" {
		if cfg.Email == "" {
			errs = append(errs, &cti.ConfigError{Path: EnvEmail, Reason: "not set: set it to the email address of the Zendesk user who owns the API token (or set " + EnvOAuthToken + " instead)"})
		}
		if cfg.APIToken == "" {
			errs = append(errs, &cti.ConfigError{Path: EnvAPIToken, Reason: "not set: create an API token in Zendesk Admin Center > Apps and integrations > APIs > Zendesk API (or set " + EnvOAuthToken + " instead)"})
		}
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Validate reports the first problem with c, naming the field and the fix.
// Errors match cti.ErrInvalid.
func (c Config) Validate() error {
	if _, err := c.BaseURL(); err != nil {
		return err
	}
	hasToken := c.Email != "" || c.APIToken != ""
	switch {
	case c.OAuthToken != "" && hasToken:
		return &cti.ConfigError{Path: "zendesk", Reason: "both an OAuth token and an email/API token are set: keep one"}
	case c.OAuthToken != "":
		if strings.ContainsAny(c.OAuthToken, " \r\n") {
			return &cti.ConfigError{Path: "zendesk.oauth_token", Reason: "contains white space or a line break"}
		}
	case c.Email == "":
		return &cti.ConfigError{Path: "zendesk.email", Reason: "missing: the email address of the user who owns the API token"}
	case c.APIToken == "":
		return &cti.ConfigError{Path: "zendesk.api_token", Reason: "missing: an API token, or an OAuth token instead"}
	case !strings.Contains(c.Email, "@"):
		return &cti.ConfigError{Path: "zendesk.email", Value: c.Email, Reason: "not an email address"}
	case strings.HasSuffix(c.Email, "/token"):
		return &cti.ConfigError{Path: "zendesk.email", Value: c.Email, Reason: `give the plain address: "/token" is added for you`}
	case strings.ContainsAny(c.APIToken, " \r\n:"):
		return &cti.ConfigError{Path: "zendesk.api_token", Reason: "contains white space, a colon or a line break: paste the token alone"}
	}
	return nil
}

// BaseURL is the API root, such as "https://acme.zendesk.com/api/v2".
func (c Config) BaseURL() (string, error) {
	raw := strings.TrimSpace(c.URL)
	if raw == "" {
		return "", &cti.ConfigError{Path: "zendesk.url", Reason: "missing: your Zendesk subdomain (acme) or URL (https://acme.zendesk.com)"}
	}
	if !strings.Contains(raw, "/") && !strings.Contains(raw, ".") && !strings.Contains(raw, ":") {
		sub := strings.ToLower(raw)
		if !subdomainRE.MatchString(sub) {
			return "", &cti.ConfigError{Path: "zendesk.url", Value: raw, Reason: "not a Zendesk subdomain: use letters, digits and dashes, or a full URL"}
		}
		return "https://" + sub + ".zendesk.com/api/v2", nil
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", &cti.ConfigError{Path: "zendesk.url", Value: c.URL, Reason: "not a URL: want https://acme.zendesk.com"}
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", &cti.ConfigError{Path: "zendesk.url", Value: c.URL, Reason: "want an http or https URL"}
	}
	if u.User != nil {
		return "", &cti.ConfigError{Path: "zendesk.url", Value: u.Redacted(), Reason: "must not contain credentials: set the email and token separately"}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", &cti.ConfigError{Path: "zendesk.url", Value: c.URL, Reason: "must not have a query or fragment"}
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/api/v2")
	u.Path = p + "/api/v2"
	return u.String(), nil
}

// authorization is the Authorization header value for c.
func (c Config) authorization() string {
	if c.OAuthToken != "" {
		return "Bearer " + c.OAuthToken
	}
	return basicAuth(c.Email+"/token", c.APIToken)
}

// secrets lists the strings that must never appear in logs or errors.
func (c Config) secrets() []string {
	var s []string
	for _, v := range []string{c.APIToken, c.OAuthToken} {
		if v != "" {
			s = append(s, v)
		}
	}
	if c.OAuthToken != "" || c.APIToken != "" {
		a := c.authorization()
		if _, v, ok := strings.Cut(a, " "); ok {
			s = append(s, v)
		}
	}
	return s
}

// Principal is who the client acts as: the email, or "oauth" for a token.
func (c Config) Principal() string {
	if c.OAuthToken != "" {
		return "oauth"
	}
	return c.Email
}

func (c Config) String() string {
	auth := "api token"
	switch {
	case c.OAuthToken != "":
		auth = "oauth token"
	case c.APIToken == "":
		auth = "no token"
	}
	return fmt.Sprintf("zendesk.Config{URL: %q, Email: %q, auth: %s}", c.URL, c.Email, auth)
}

// GoString keeps %#v from printing the secrets.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog from printing the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", c.URL), slog.String("email", c.Email),
		slog.Bool("api_token", c.APIToken != ""), slog.Bool("oauth_token", c.OAuthToken != ""))
}
