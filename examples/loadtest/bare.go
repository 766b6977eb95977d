package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// bare is figure 2's bare client (-client bare): what a pop costs on this
// machine without ctikit, the reference ctikit's figure is read against.
//
// It subscribes to the same topics as the engine (so each update arrives
// twice, on the queue's topic and the agent's), reads every frame off the
// Genesys emulator's websocket, decodes the few fields it needs with
// encoding/json, and on a conversation's first alerting agent leg makes
// the strategy's Zendesk requests one after the other with net/http —
// the same requests, on the same HTTP transport and timing as ctikit's,
// so that the figure's table and split read the same. Nothing else: no
// engine, matcher cache, store, dedupe, directory or sync, and no
// enrichment calls to Genesys. Whatever it shows above the floor is the
// machine's and the two HTTP stacks', for any client.
type bare struct {
	w      *world
	tr     *tracker
	hc     *http.Client
	kind   map[string]string // queue id → strategy name
	agents map[string]int64  // Genesys user id → Zendesk agent id
	ws     *websocket.Conn
	cancel context.CancelFunc
	read   chan error // the reader's end

	mu     sync.Mutex
	popped map[string]bool
	pops   sync.WaitGroup

	stopOnce sync.Once
	stopErr  error
}

// startBare connects the bare client to the emulators, subscribed to the
// topics rules would subscribe the engine to.
func startBare(ctx context.Context, w *world, tr *tracker, sts []strategy) (*bare, error) {
	b := &bare{w: w, tr: tr, kind: map[string]string{}, agents: map[string]int64{}, popped: map[string]bool{}, read: make(chan error, 1),
		hc: &http.Client{Transport: w.clientTiming(zendesk.NewBaseTransport()), Timeout: 30 * time.Second}}
	for _, s := range sts {
		b.kind[s.queue] = s.name
	}
	for _, a := range w.Agents {
		b.agents[a.GenesysID] = a.ZendeskID
	}
	sub := w.rulesFor(sts...).Subscribe
	var topics []map[string]string
	for _, q := range sub.Queues {
		topics = append(topics, map[string]string{"id": "v2.routing.queues." + q + ".conversations"})
	}
	for _, u := range sub.Users {
		topics = append(topics, map[string]string{"id": "v2.users." + u + ".conversations"})
	}
	uri, err := b.channel(ctx, topics)
	if err != nil {
		return nil, fmt.Errorf("bare client: %w", err)
	}
	ws, resp, err := websocket.Dial(ctx, uri, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("bare client: open notification websocket: %w", err)
	}
	ws.SetReadLimit(8 << 20)
	b.ws = ws
	rctx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	go func() { b.read <- b.readLoop(rctx, ctx) }()
	return b, nil
}

// channel gets a token, creates a notification channel and subscribes it
// to topics, as the Genesys Cloud API has it; it returns the channel's
// websocket address.
func (b *bare) channel(ctx context.Context, topics []map[string]string) (string, error) {
	g := b.w.GenesysURL
	req, err := http.NewRequestWithContext(ctx, "POST", g+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(b.w.ClientID, b.w.ClientSecret)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := do(http.DefaultClient, req, &tok); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	call := func(method, path string, in, out any) error {
		req, err := jsonRequest(ctx, method, g+path, in)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		return do(http.DefaultClient, req, out)
	}
	var ch struct {
		ID         string `json:"id"`
		ConnectURI string `json:"connectUri"`
	}
	if err := call("POST", "/api/v2/notifications/channels", nil, &ch); err != nil {
		return "", fmt.Errorf("create channel: %w", err)
	}
	if err := call("PUT", "/api/v2/notifications/channels/"+ch.ID+"/subscriptions", topics, nil); err != nil {
		return "", fmt.Errorf("subscribe: %w", err)
	}
	return ch.ConnectURI, nil
}

// bareFrame is what the bare client reads of a notification.
type bareFrame struct {
	EventBody struct {
		ID           string `json:"id"`
		Participants []struct {
			Purpose string `json:"purpose"`
			UserID  string `json:"userId"`
			QueueID string `json:"queueId"`
			Address string `json:"address"`
			Calls   []struct {
				State string `json:"state"`
			} `json:"calls"`
		} `json:"participants"`
	} `json:"eventBody"`
}

// readLoop reads frames until rctx ends; the pops it starts run on ctx.
func (b *bare) readLoop(rctx, ctx context.Context) error {
	for {
		_, data, err := b.ws.Read(rctx)
		if err != nil {
			return err
		}
		read := time.Now()
		var f bareFrame
		if json.Unmarshal(data, &f) != nil || f.EventBody.ID == "" {
			continue // heartbeats, channel metadata
		}
		var phone, queue, agentUser string
		for _, p := range f.EventBody.Participants {
			switch p.Purpose {
			case "customer", "external":
				phone = strings.TrimPrefix(p.Address, "tel:")
			case "agent":
				if len(p.Calls) > 0 && p.Calls[len(p.Calls)-1].State == "alerting" {
					agentUser, queue = p.UserID, p.QueueID
				}
			}
		}
		kind, agent := b.kind[queue], b.agents[agentUser]
		if kind == "" || agent == 0 || phone == "" {
			continue
		}
		id := f.EventBody.ID
		b.mu.Lock()
		first := !b.popped[id]
		b.popped[id] = true
		b.mu.Unlock()
		if !first {
			continue
		}
		b.pops.Go(func() {
			err := b.pop(ctx, kind, phone, agent)
			b.tr.mu.Lock()
			b.tr.pops[id] = popSeen{received: read, agent: agent, err: err}
			b.tr.mu.Unlock()
		})
	}
}

// pop makes the strategy's requests, one after the other, as ctikit makes
// them for the loadtest's rules (figure 2's floor counts the same round
// trips).
func (b *bare) pop(ctx context.Context, kind, phone string, agent int64) error {
	var found struct {
		Results []struct {
			ID int64 `json:"id"`
		} `json:"results"`
	}
	q := url.Values{"query": {`type:user phone:"` + phone + `"`}, "sort_by": {"updated_at"}, "sort_order": {"desc"}, "per_page": {"100"}}
	if err := b.zd(ctx, "GET", "/search.json?"+q.Encode(), nil, &found); err != nil {
		return err
	}
	var user int64
	if len(found.Results) > 0 {
		user = found.Results[0].ID
	}
	voiceTicket := func(user int64) error {
		in := map[string]any{"display_to_agent": agent, "ticket": map[string]any{"requester_id": user, "via_id": zendesk.ViaInboundCall,
			"subject": "Call from " + phone, "comment": map[string]any{"body": "Inbound call from " + phone}}}
		return b.zd(ctx, "POST", "/channels/voice/tickets.json", in, nil)
	}
	switch {
	case kind == stUser && user != 0:
		return b.zd(ctx, "POST", fmt.Sprintf("/channels/voice/agents/%d/users/%d/display.json", agent, user), struct{}{}, nil)
	case kind == stNew && user != 0:
		return voiceTicket(user)
	case kind == stLatest && user != 0:
		var ts struct {
			Tickets []struct {
				ID     int64  `json:"id"`
				Status string `json:"status"`
			} `json:"tickets"`
		}
		if err := b.zd(ctx, "GET", "/users/"+strconv.FormatInt(user, 10)+"/tickets/requested.json?sort_by=updated_at&sort_order=desc&per_page=100", nil, &ts); err != nil {
			return err
		}
		for _, t := range ts.Tickets {
			switch t.Status {
			case "new", "open", "pending", "hold":
				return b.zd(ctx, "POST", fmt.Sprintf("/channels/voice/agents/%d/tickets/%d/display.json", agent, t.ID), struct{}{}, nil)
			}
		}
		return fmt.Errorf("user %d has no open ticket", user)
	case kind == stNoMatch && user == 0:
		var created struct {
			User struct {
				ID int64 `json:"id"`
			} `json:"user"`
		}
		if err := b.zd(ctx, "POST", "/users.json", map[string]any{"user": map[string]any{"name": "Caller " + phone, "phone": phone}}, &created); err != nil {
			return err
		}
		return voiceTicket(created.User.ID)
	}
	return fmt.Errorf("%s: unexpected search result for %s (user %d)", kind, phone, user)
}

// zd is one Zendesk API request.
func (b *bare) zd(ctx context.Context, method, path string, in, out any) error {
	req, err := jsonRequest(ctx, method, b.w.ZendeskURL+"/api/v2"+path, in)
	if err != nil {
		return err
	}
	req.SetBasicAuth(zendesktest.DefaultEmail+"/token", zendesktest.DefaultAPIToken)
	return do(b.hc, req, out)
}

// jsonRequest is a request to u with in, when not nil, as its JSON body.
func jsonRequest(ctx context.Context, method, u string, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// do sends req and decodes a 2xx answer's JSON into out (if not nil).
func do(hc *http.Client, req *http.Request, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// stop closes the websocket, then waits for the pops in flight; it
// reports a websocket that ended before it was asked to. Later calls
// return the first one's answer.
func (b *bare) stop() error {
	b.stopOnce.Do(func() { b.stopErr = b.shutdown() })
	return b.stopErr
}

func (b *bare) shutdown() error {
	var early error
	select {
	case early = <-b.read:
	default:
	}
	b.cancel()
	b.ws.CloseNow()
	if early == nil {
		<-b.read
	}
	b.pops.Wait()
	if early != nil {
		return fmt.Errorf("bare client: the websocket ended during the run: %w", early)
	}
	return nil
}
