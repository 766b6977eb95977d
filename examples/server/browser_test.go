package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// TestPanelInChromium opens the agent panel in real headless Chromium, sees
// a WhatsApp conversation from a phone two customers share arrive, picks
// one of the matches, and checks that the Zendesk emulator received the
// Talk Partner Edition display call for that record.
func TestPanelInChromium(t *testing.T) {
	exe := chromium(t)
	r := startDemo(t)
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
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

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
