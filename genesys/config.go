package genesys

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/cxplay/ctikit/cti"
)

// Environment variables read by ConfigFromEnv. They are the names used by
// Genesys' own CX-as-Code tools (the Terraform provider and the CLI).
const (
	EnvClientID     = "GENESYSCLOUD_OAUTHCLIENT_ID"
	EnvClientSecret = "GENESYSCLOUD_OAUTHCLIENT_SECRET"
	EnvRegion       = "GENESYSCLOUD_REGION"
	EnvAPIURL       = "GENESYSCLOUD_API_URL"
	EnvLoginURL     = "GENESYSCLOUD_LOGIN_URL"
)

// Regions maps the AWS region names Genesys Cloud documents for its
// deployments to the region's domain: the API lives at https://api.{domain},
// the login (OAuth) service at https://login.{domain} and the web apps at
// https://apps.{domain}. Config.Region accepts either form (a key or a
// value).
var Regions = map[string]string{
	"us-east-1":      "mypurecloud.com",
	"us-east-2":      "use2.us-gov-pure.cloud",
	"us-west-2":      "usw2.pure.cloud",
	"ca-central-1":   "cac1.pure.cloud",
	"sa-east-1":      "sae1.pure.cloud",
	"eu-west-1":      "mypurecloud.ie",
	"eu-west-2":      "euw2.pure.cloud",
	"eu-central-1":   "mypurecloud.de",
	"eu-central-2":   "euc2.pure.cloud",
	"me-central-1":   "mec1.pure.cloud",
	"ap-south-1":     "aps1.pure.cloud",
	"ap-southeast-2": "mypurecloud.com.au",
	"ap-northeast-1": "mypurecloud.jp",
	"ap-northeast-2": "apne2.pure.cloud",
	"ap-northeast-3": "apne3.pure.cloud",
}

// Config locates a Genesys Cloud org and holds the OAuth client credentials
// (client credentials grant) used to reach it.
//
// Either Region or APIURL must be set. Region is a Genesys domain
// ("mypurecloud.ie", "usw2.pure.cloud") or an AWS region name ("eu-west-1"),
// see Regions; APIURL and LoginURL override the URLs derived from it (an
// emulator, a gateway, a region not listed yet). When only APIURL is given,
// the login URL is derived the way the Genesys SDK does it (api. → login.),
// or is APIURL itself when the host does not start with "api.".
//
// The zero value is not valid; fill it or use ConfigFromEnv, then Validate.
// Config is a plain value, safe to copy. Its String, GoString and LogValue
// methods never reveal ClientSecret.
type Config struct {
	ClientID     string
	ClientSecret string
	Region       string
	APIURL       string
	LoginURL     string
	// AppsURL is the base of the Genesys web apps, for links to the
	// interaction (default derived from the region or API URL: api. → apps.).
	AppsURL string
}

// ConfigFromEnv reads a Config from the GENESYSCLOUD_* environment
// variables (see the Env* constants) and validates it. The error names the
// variable to set or fix.
func ConfigFromEnv() (Config, error) { return ConfigFromLookup(os.LookupEnv) }

// ConfigFromLookup is ConfigFromEnv with a custom lookup function (for
// tests, or a secrets store). It returns a *cti.ConfigError naming the
// variable when one is missing or invalid.
func ConfigFromLookup(lookup func(string) (string, bool)) (Config, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	c := Config{
		ClientID:     get(EnvClientID),
		ClientSecret: get(EnvClientSecret),
		Region:       get(EnvRegion),
		APIURL:       get(EnvAPIURL),
		LoginURL:     get(EnvLoginURL),
	}
	if err := c.validate(true); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports every problem at once: missing credentials, no region
// or API URL, an unknown region, a malformed URL. Each is a
// *cti.ConfigError (errors.Is(err, cti.ErrInvalid)) naming the field; they
// are joined with errors.Join.
func (c Config) Validate() error { return c.validate(false) }

func (c Config) validate(env bool) error {
	name := func(field, envName string) string {
		if env {
			return envName
		}
		return field
	}
	var errs []error
	if c.ClientID == "" {
		errs = append(errs, &cti.ConfigError{Path: name("ClientID", EnvClientID), Reason: "missing: set the OAuth client id (client credentials grant)"})
	}
	if c.ClientSecret == "" {
		errs = append(errs, &cti.ConfigError{Path: name("ClientSecret", EnvClientSecret), Reason: "missing: set the OAuth client secret"})
	}
	if c.Region == "" && c.APIURL == "" {
		errs = append(errs, &cti.ConfigError{Path: name("Region", EnvRegion),
			Reason: fmt.Sprintf("missing: set the org's region (one of %s, or its domain such as mypurecloud.ie) or %s", strings.Join(regionNames(), ", "), name("APIURL", EnvAPIURL))})
	}
	if c.Region != "" {
		if _, err := regionDomain(c.Region); err != nil {
			errs = append(errs, &cti.ConfigError{Path: name("Region", EnvRegion), Value: c.Region, Reason: err.Error()})
		}
	}
	for _, u := range []struct{ field, env, v string }{
		{"APIURL", EnvAPIURL, c.APIURL}, {"LoginURL", EnvLoginURL, c.LoginURL}, {"AppsURL", "", c.AppsURL},
	} {
		if u.v == "" {
			continue
		}
		if err := checkBaseURL(u.v); err != nil {
			p := u.field
			if env && u.env != "" {
				p = u.env
			}
			errs = append(errs, &cti.ConfigError{Path: p, Value: u.v, Reason: err.Error()})
		}
	}
	return errors.Join(errs...)
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errors.New("must start with https:// (or http:// for a local emulator)")
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be a base URL without query or fragment")
	}
	return nil
}

func regionNames() []string {
	names := make([]string, 0, len(Regions))
	for k := range Regions {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// regionDomain resolves a region name or domain to the domain.
func regionDomain(r string) (string, error) {
	r = strings.ToLower(strings.TrimSpace(r))
	r = strings.TrimPrefix(strings.TrimPrefix(r, "https://"), "http://")
	r = strings.TrimPrefix(strings.TrimPrefix(r, "api."), "apps.")
	r = strings.TrimSuffix(r, "/")
	if d, ok := Regions[strings.ReplaceAll(r, "_", "-")]; ok {
		return d, nil
	}
	for _, d := range Regions {
		if r == d {
			return d, nil
		}
	}
	// A region Genesys opened after this list: accept its domain.
	if strings.HasSuffix(r, ".pure.cloud") || strings.HasPrefix(r, "mypurecloud.") {
		if _, err := url.Parse("https://api." + r); err == nil && !strings.ContainsAny(r, "/ @?#") {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown region: use one of %s, or a Genesys domain such as mypurecloud.ie or usw2.pure.cloud", strings.Join(regionNames(), ", "))
}

// APIBase returns the API base URL without a trailing slash, e.g.
// https://api.mypurecloud.ie. Call Validate first.
func (c Config) APIBase() string {
	if c.APIURL != "" {
		return strings.TrimRight(c.APIURL, "/")
	}
	d, _ := regionDomain(c.Region)
	return "https://api." + d
}

// LoginBase returns the OAuth base URL (the token endpoint is
// LoginBase()+"/oauth/token").
func (c Config) LoginBase() string {
	if c.LoginURL != "" {
		return strings.TrimRight(c.LoginURL, "/")
	}
	if c.APIURL == "" {
		d, _ := regionDomain(c.Region)
		return "https://login." + d
	}
	return swapHostPrefix(c.APIBase(), "api.", "login.")
}

// AppsBase returns the base URL of the Genesys web apps (agent and admin
// UI), used for interaction links.
func (c Config) AppsBase() string {
	if c.AppsURL != "" {
		return strings.TrimRight(c.AppsURL, "/")
	}
	if c.APIURL == "" {
		d, _ := regionDomain(c.Region)
		return "https://apps." + d
	}
	return swapHostPrefix(c.APIBase(), "api.", "apps.")
}

// InteractionURL is the link to a conversation in Genesys Cloud's
// interaction details view.
func (c Config) InteractionURL(conversationID string) string {
	return c.AppsBase() + "/directory/#/engage/admin/interactions/" + url.PathEscape(conversationID)
}

func swapHostPrefix(base, from, to string) string {
	u, err := url.Parse(base)
	if err != nil || !strings.HasPrefix(strings.ToLower(u.Host), from) {
		return base
	}
	u.Host = to + u.Host[len(from):]
	return strings.TrimRight(u.String(), "/")
}

// String describes the config without the client secret.
func (c Config) String() string {
	where := c.Region
	if c.APIURL != "" {
		where = c.APIURL
	}
	secret := "unset"
	if c.ClientSecret != "" {
		secret = "set"
	}
	return fmt.Sprintf("genesys.Config{client %s, secret %s, %s}", c.ClientID, secret, where)
}

// GoString is String, so %#v does not print the secret either.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the client secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("clientId", c.ClientID),
		slog.Bool("secretSet", c.ClientSecret != ""),
		slog.String("region", c.Region),
		slog.String("apiUrl", c.APIURL),
		slog.String("loginUrl", c.LoginURL),
	)
}
