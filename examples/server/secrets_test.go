package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"github.com/cxplay/ctikit/internal/testlog"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// TestSecretsNeverLeak runs the demo server on the emulators with debug
// logging, plays calls through faults that make every component log and
// fail (dropped socket, revoked tokens, OAuth 429, Zendesk 401, 429, 500,
// 422), scrapes /metrics, /healthz and the panel API, formats the setup
// the way a panic or a debug print would, and starts servers with wrong
// credentials; then greps all of it for the secrets: the Genesys client
// secret, the Zendesk API token (and its Basic auth encoding), and every
// Genesys access token the emulator issued.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const zdToken = "zd-T0KEN-5ecret-6b1f0c"
	r := startRig(t, rigOptions{
		quiet:   true, // the emulators log requests; only the server's own logs count
		genesys: []gt.Option{gt.WithCredentials("leak-test-client", "gc-S3CRET-9e2d7a4c")},
		zendesk: []zendesktest.Option{zendesktest.WithAPIToken(zendesktest.DefaultEmail, zdToken)},
		setup: func(s *Setup) {
			s.Zendesk.APIToken = zdToken
		},
	})
	g, z := r.demo.Genesys, r.demo.Zendesk
	var seen bytes.Buffer // everything but the logs

	specs := faultCalls
	cvs, legs := r.liveCalls(specs)
	g.RevokeTokens()
	g.FailREST(gt.Fault{PathPrefix: "/oauth/token", Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 1})
	g.DropSockets()
	z.InjectFault(zendesktest.Fault{Method: "GET", Status: http.StatusUnauthorized, Times: 2})
	z.InjectFault(zendesktest.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 3})
	z.InjectFault(zendesktest.Fault{Method: "PUT", Status: http.StatusInternalServerError, Times: 2})
	z.RejectField(360000000002)
	finish(cvs, legs)
	r.settled(specs, cvs)

	for _, path := range []string{"/metrics", "/healthz", "/panel/api/items?agent=201", "/panel/api/agents", "/panel/"} {
		resp, err := http.Get(r.base + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&seen, "%s %d\n%s\n", path, resp.StatusCode, b)
	}
	// What a panic or a debug print of the configuration would show.
	s := r.demo.Setup("127.0.0.1:0", "", nil)
	s.Zendesk.APIToken = zdToken
	fmt.Fprintf(&seen, "%v\n%+v\n%#v\n%v %+v\n", s, s, s, s.Genesys, s.Zendesk)

	// Wrong credentials: the errors and logs say what is wrong, not the secret.
	for _, bad := range []func(*Setup){
		func(s *Setup) { s.Genesys.ClientSecret = "gc-WR0NG-secret-1f2e" },
		func(s *Setup) { s.Zendesk.APIToken = "zd-WR0NG-token-8c7d" },
	} {
		var logs testlog.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		s := r.demo.Setup("127.0.0.1:0", t.TempDir(), log)
		s.Zendesk.APIToken = zdToken
		bad(&s)
		app, err := Build(s)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = app.Run(ctx)
		cancel()
		perr := app.Zendesk.Ping(context.Background())
		fmt.Fprintf(&seen, "run error: %v\nping error: %v\n%s\n", err, perr, logs.String())
		assert.True(t, err != nil || perr != nil, "the wrong credential was noticed")
	}

	all := r.logs.String() + "\n" + seen.String()
	secrets := map[string]string{
		"Genesys client secret":    g.ClientSecret,
		"wrong Genesys secret":     "gc-WR0NG-secret-1f2e",
		"Zendesk API token":        zdToken,
		"wrong Zendesk API token":  "zd-WR0NG-token-8c7d",
		"Zendesk Basic credential": base64.StdEncoding.EncodeToString([]byte(zendesktest.DefaultEmail + "/token:" + zdToken)),
		"Genesys Basic credential": base64.StdEncoding.EncodeToString([]byte(g.ClientID + ":" + g.ClientSecret)),
	}
	tokens := g.IssuedTokens()
	require.GreaterOrEqual(t, len(tokens), 2, "the revocation made the server get a new token")
	for i, tok := range tokens {
		secrets[fmt.Sprintf("Genesys access token %d", i)] = tok
	}
	for what, v := range secrets {
		if strings.Contains(all, v) {
			i := strings.Index(all, v)
			t.Errorf("%s leaked: ...%s...", what, all[max(0, i-200):min(len(all), i+len(v)+50)])
		}
	}
	assert.Greater(t, len(r.logs.String()), 10000, "debug logs were captured")
	assert.Contains(t, seen.String(), "ctikit_upstream_requests_total", "metrics were scraped")
}
