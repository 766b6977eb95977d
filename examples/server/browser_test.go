package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/examples/server/internal/panel"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// chromium finds Debian's Chromium; without it the test skips, unless
// CTI_REQUIRE_BROWSER=1 (CI) makes that a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CTI_REQUIRE_BROWSER") == "1" {
		t.Fatal("Chromium not found (apt-get install -y chromium)")
	}
	t.Skip("Chromium not found; CI installs it (apt-get install -y chromium)")
	return ""
}

// browser starts headless Chromium for a test.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(420, 720),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelT)
	return ctx
}

// TestPanelInChromium opens the agent panel in real headless Chromium, sees
// a WhatsApp conversation from a phone two customers share arrive, picks
// one of the matches, and checks that the Zendesk emulator received the
// Talk Partner Edition display call for that record.
func TestPanelInChromium(t *testing.T) {
	ctx := browser(t)
	r := startDemo(t)

	// Bob opens his panel before the conversation arrives.
	panelURL := r.base + "/panel/?agent=" + itoa(zendesktest.DemoAgentBob)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(panelURL), chromedp.WaitVisible("#live.live")))

	cv := r.demo.Genesys.Start(gt.Spec{Media: gt.MediaMessage, MessageType: "whatsapp", From: "+14155550102",
		Queue: gt.QueueSocial, Body: "Hi, where is my order?"})
	leg := cv.Alert(gt.AgentBob)
	cv.Connect(leg) // the messaging rule pops on connected

	pick := `[data-testid=pick][data-record="user/` + itoa(zendesktest.DemoJoan) + `"]`
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(`[data-testid=conversation][data-conversation="`+cv.ID+`"]`),
		chromedp.WaitVisible(pick),
	))
	candidates, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=pick]').length`))
	require.NoError(t, err)
	assert.Equal(t, 2, candidates, "John and Joan share the number")
	assert.Empty(t, r.demo.Zendesk.Displays(zendesktest.DemoAgentBob), "nothing popped until Bob picks")
	if dir := os.Getenv("CTI_SCREENSHOT_DIR"); dir != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "panel.png"), png, 0o644))
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(pick),
		chromedp.WaitVisible(`[data-testid=popped] [data-record="user/`+itoa(zendesktest.DemoJoan)+`"]`),
	))
	screen, err := chromedp.Run(ctx, chromedp.Text(`[data-testid=screen]`))
	require.NoError(t, err)
	assert.Contains(t, screen, "Zendesk would open user #"+itoa(zendesktest.DemoJoan))
	r.eventually("the display call for Joan", func() bool {
		for _, d := range r.demo.Zendesk.Displays(zendesktest.DemoAgentBob) {
			if d.Kind == "user" && d.ID == zendesktest.DemoJoan {
				return true
			}
		}
		return false
	})

	// The sync status reaches the page when Bob wraps up.
	cv.Disconnect(leg)
	cv.End()
	cv.Wrapup(leg, gt.CodeResolved, "Order 4411 shipped.")
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(`[data-testid=sync].done`)))
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// sessionAuth is the panel's authenticator in a test: it accepts every
// request until told to refuse (401) or to fail (500).
type sessionAuth struct {
	mode    atomic.Int32 // 0 accept, 401 or 500
	refused atomic.Int32 // stream requests answered with an error
}

func (a *sessionAuth) Authenticate(r *http.Request) (int64, error) {
	var err error
	switch a.mode.Load() {
	case 401:
		err = fmt.Errorf("%w: bad session", panel.ErrUnauthorized)
	case 500:
		err = fmt.Errorf("%w: the server is restarting", cti.ErrClosed)
	default:
		return 101, nil
	}
	if strings.HasSuffix(r.URL.Path, "/api/stream") {
		a.refused.Add(1)
	}
	return 0, err
}

func (a *sessionAuth) Begin(*http.Request) (int64, string, error) { return 101, "session-101", nil }

// An open panel whose stream is refused keeps trying while the server
// answers errors, and when the server refuses its session (a 401: the
// session expired, or the server lost its key) tells the agent to reload
// instead of going quiet.
func TestPanelInChromiumRecoversOrAsksToReload(t *testing.T) {
	ctx := browser(t)
	p, err := panel.New(panel.Options{Directory: cti.DirectoryFunc(func(context.Context, *cti.AgentLeg) (cti.Agent, error) {
		return cti.Agent{ID: 101}, nil
	})})
	require.NoError(t, err)
	auth := &sessionAuth{}
	srv := httptest.NewServer(http.StripPrefix("/panel", p.Handler(auth, false)))
	defer srv.Close()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/panel/"), chromedp.WaitVisible("#live.live")))
	visible := func(sel string) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return chromedp.Do(ctx, chromedp.WaitVisible(sel))
	}

	// The server answers errors for a while (a proxy's 502 while it restarts).
	auth.mode.Store(500)
	srv.CloseClientConnections()
	deadline := time.Now().Add(30 * time.Second)
	for auth.refused.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Positive(t, auth.refused.Load(), "the page reconnects after the stream drops")
	auth.mode.Store(0)
	require.NoError(t, visible("#live.live"), "the page reconnects once the server is back")

	// The server no longer accepts the page's session.
	auth.mode.Store(401)
	srv.CloseClientConnections()
	require.NoError(t, visible("[data-testid=signed-out]"), "the page says it was signed out")
	msg, err := chromedp.Run(ctx, chromedp.Text("[data-testid=signed-out]"))
	require.NoError(t, err)
	assert.Contains(t, msg, "Reload Zendesk")
}
