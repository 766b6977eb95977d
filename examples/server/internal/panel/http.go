package panel

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
)

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

// Handler serves the panel: the page (GET or, from Zendesk, POST /), the
// API (/api/items, /api/choose, /api/agents) and the live stream
// (/api/stream, Server-Sent Events). Every request is authenticated with
// auth; an agent only ever sees and answers their own conversations.
func (p *Panel) Handler(auth Authenticator, demo bool) http.Handler {
	mux := http.NewServeMux()
	h := &handler{p: p, auth: auth, demo: demo}
	mux.HandleFunc("GET /{$}", h.page)
	mux.HandleFunc("POST /{$}", h.page)
	mux.HandleFunc("GET /api/items", h.items)
	mux.HandleFunc("GET /api/agents", h.agents)
	mux.HandleFunc("GET /api/stream", h.stream)
	mux.HandleFunc("POST /api/choose", h.choose)
	return h.secure(mux)
}

type handler struct {
	p    *Panel
	auth Authenticator
	demo bool
}

func (h *handler) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		ancestors := "'self'"
		if !h.demo {
			ancestors = "https://*.zendesk.com"
		}
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline' https://static.zdassets.com; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors "+ancestors)
		// Demo mode trusts loopback: a page from another site open in
		// the same browser could still POST to it (a form or a
		// text/plain fetch needs no CORS preflight). Browsers send Origin
		// with such requests: refuse writes from another origin.
		if h.demo && r.Method != http.MethodGet && r.Method != http.MethodHead && crossOrigin(r) {
			httpError(w, fmt.Errorf("%w: cross-site request refused", ErrForbidden))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// crossOrigin reports whether r carries an Origin other than its own host.
func crossOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}

func httpError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnauthorized):
		code = http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		code = http.StatusForbidden
	case errors.Is(err, cti.ErrInvalid), errors.Is(err, cti.ErrNoChoice):
		code = http.StatusConflict
	case errors.Is(err, cti.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, cti.ErrClosed):
		code = http.StatusServiceUnavailable
	case cti.IsRetryable(err):
		code = http.StatusBadGateway
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

type pageData struct {
	Agent   int64
	Session string
	Demo    bool
	Zendesk string
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	agent, session, err := h.auth.Begin(r)
	if err != nil {
		httpError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTmpl.Execute(w, pageData{Agent: agent, Session: session, Demo: h.demo, Zendesk: h.p.opt.ZendeskURL})
}

func (h *handler) agent(w http.ResponseWriter, r *http.Request) (int64, bool) {
	a, err := h.auth.Authenticate(r)
	if err != nil {
		httpError(w, err)
		return 0, false
	}
	if a == 0 {
		httpError(w, fmt.Errorf("%w: pick an agent", ErrUnauthorized))
		return 0, false
	}
	return a, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (h *handler) items(w http.ResponseWriter, r *http.Request) {
	a, ok := h.agent(w, r)
	if !ok {
		return
	}
	writeJSON(w, h.p.Items(a))
}

func (h *handler) agents(w http.ResponseWriter, r *http.Request) {
	if !h.demo {
		httpError(w, cti.ErrNotFound)
		return
	}
	if _, err := h.auth.Authenticate(r); err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, h.p.Agents())
}

type chooseRequest struct {
	ConversationID string      `json:"conversationId"`
	LegID          string      `json:"legId"`
	Record         *cti.Record `json:"record,omitempty"` // nil: create new
}

func (h *handler) choose(w http.ResponseWriter, r *http.Request) {
	a, ok := h.agent(w, r)
	if !ok {
		return
	}
	var req chooseRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.ConversationID == "" || req.LegID == "" {
		httpError(w, fmt.Errorf("%w: want {conversationId, legId, record: {kind, id} or null}", cti.ErrInvalid))
		return
	}
	res, err := h.p.Choose(r.Context(), a, req.ConversationID, req.LegID, req.Record)
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, res)
}

// stream sends the agent's items, then every change, as SSE events.
func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	a, ok := h.agent(w, r)
	if !ok {
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		httpError(w, errors.New("streaming unsupported"))
		return
	}
	ch, cancel := h.p.subscribe(a)
	defer cancel()
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		if err == nil {
			fl.Flush()
		}
		return err == nil
	}
	if !send("snapshot", h.p.Items(a)) {
		return
	}
	ping := time.NewTicker(20 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case u, ok := <-ch:
			if !ok {
				return // dropped for being slow, or shutting down: the client reconnects
			}
			if !send(u.Type, u) {
				return
			}
		case <-ping.C:
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := strings.NewReader(": ping\n\n").WriteTo(w); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
