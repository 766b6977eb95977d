package panel

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// In demo mode the panel trusts loopback requests, so a web page from
// another site, open in the agent's browser, could POST a choice to it
// (a no-preflight request). Writes carrying another Origin are refused;
// the panel's own page (same origin) and non-browser clients (no Origin)
// still work.
func TestDemoRefusesCrossSiteWrites(t *testing.T) {
	p, eng := newPanel(t)
	offer(t, p)
	h := p.Handler(Loopback{}, true)
	body := `{"conversationId":"c1","legId":"l1","record":{"kind":"user","id":2}}`

	for _, origin := range []string{"http://evil.example", "http://127.0.0.1:9999", "null"} {
		req := loopbackReq("POST", "/api/choose?agent=101", body)
		req.Header.Set("Origin", origin)
		req.Header.Set("Content-Type", "text/plain")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		assert.Equal(t, 403, w.Code, "Origin %s", origin)
	}
	require.Empty(t, eng.calls, "no cross-site choice reached the engine")

	req := loopbackReq("POST", "/api/choose?agent=101", body)
	req.Header.Set("Origin", "http://127.0.0.1:8080")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, []string{"c1/l1:user/2"}, eng.calls)

	// Reads are not affected (and leak nothing cross-site: no CORS headers).
	req = loopbackReq("GET", "/api/items?agent=101", "")
	req.Header.Set("Origin", "http://evil.example")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	assert.Equal(t, 200, w.Code)
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
}
