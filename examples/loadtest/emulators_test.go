package main

import (
	"net"
	"net/http"
	"net/rpc"
	"net/rpc/jsonrpc"
	"strconv"
	"testing"
	"time"

	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
	"github.com/stretchr/testify/require"
)

// TestRemoteEmulators drives the emulators through the child's RPC
// service and codec, over a pipe: what the figures read back (ids,
// custom fields, the listener's wall-clock times, request bodies and
// sequence numbers) survives the JSON wire.
func TestRemoteEmulators(t *testing.T) {
	e := startLocal(emuConfig{agents: 3})
	defer e.close()
	srvConn, cliConn := net.Pipe()
	srv := rpc.NewServer()
	require.NoError(t, srv.Register(&Emu{e}))
	served := make(chan struct{})
	go func() { srv.ServeCodec(jsonrpc.NewServerCodec(srvConn)); close(served) }()
	c := jsonrpc.NewClient(cliConn)
	defer func() { c.Close(); <-served }()
	r := &remote{c: c}

	var h Hello
	r.call("Hello", Empty{}, &h)
	require.Len(t, h.Agents, 3)
	require.Equal(t, e.Agents, h.Agents)
	require.Equal(t, e.ZendeskURL, h.ZendeskURL)
	require.NotEmpty(t, h.ClientSecret)

	z := remoteZendesk{r}
	u := z.AddUser(zendesktest.User{Name: "Caller", Phone: "+12025550100"})
	require.NotZero(t, u.ID)
	tk := z.AddTicket(zendesktest.Ticket{Subject: "Order", Status: "open", RequesterID: u.ID,
		CustomFields: map[int64]any{360000000001: "42"}})
	got, ok := z.Ticket(tk.ID)
	require.True(t, ok)
	require.Equal(t, u.ID, got.RequesterID)
	require.Equal(t, "42", got.CustomFields[360000000001])
	_, ok = z.Ticket(tk.ID + 1000)
	require.False(t, ok)
	require.Len(t, z.Users(), 5) // the API user, three agents and the caller

	// A request timed by the listener comes back with its times and seq.
	r.call("SetLimits", Limits{Rate: 1000, RateWindow: time.Minute, Updates: 1000, UpdatesWindow: time.Minute}, &Empty{})
	e.timed() // the seeding's requests, if any
	before := time.Now()
	req, err := http.NewRequest(http.MethodGet, h.ZendeskURL+"/api/v2/users/"+strconv.FormatInt(u.ID, 10)+".json", nil)
	require.NoError(t, err)
	req.SetBasicAuth(zendesktest.DefaultEmail+"/token", zendesktest.DefaultAPIToken)
	req.Header.Set(seqHeader, "7")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	after := time.Now()
	var timed []TimedRequest
	r.call("Timed", Empty{}, &timed)
	require.Len(t, timed, 1)
	q := timed[0]
	require.Equal(t, int64(7), q.Seq)
	require.Equal(t, "/api/v2/users/"+strconv.FormatInt(u.ID, 10)+".json", q.Path)
	require.False(t, q.Arrived.Before(before.Round(0)), "arrived %v before the request %v", q.Arrived, before)
	require.False(t, q.Answered.After(after.Round(0)), "answered %v after the response %v", q.Answered, after)
	require.False(t, q.Answered.Before(q.Arrived))
	require.Len(t, z.Requests(), 1)
	z.ResetRequests()
	require.Empty(t, z.Requests())

	// A call played step by step.
	g := remoteGenesys{r}
	id := newConvID()
	g.Start(gt.Spec{ID: id, Media: gt.MediaVoice, From: "+12025550100", Queue: qUser})
	leg := g.Alert(id, h.Agents[0].GenesysID)
	require.NotEmpty(t, leg)
	g.Connect(id, leg)
	g.Disconnect(id, leg)
	lg := e.g.(*localGenesys)
	lg.mu.Lock()
	require.Contains(t, lg.convs, id)
	lg.mu.Unlock()
	g.Wrapup(id, leg, gt.CodeResolved, "done")
	lg.mu.Lock()
	require.NotContains(t, lg.convs, id, "a wrapped-up call is forgotten")
	lg.mu.Unlock()
}

func TestNewConvIDIsAUUID(t *testing.T) {
	a, b := newConvID(), newConvID()
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, a)
	require.NotEqual(t, a, b)
}

func TestEmulatorEnvDropsRuntimeSettings(t *testing.T) {
	got := emulatorEnv([]string{"PATH=/bin", "GOMAXPROCS=4", "GOGC=200", "GODEBUG=gctrace=1", "GOMEMLIMIT=1GiB", "HOME=/root", "GOFLAGS=-mod=mod"})
	require.Equal(t, []string{"PATH=/bin", "HOME=/root", "GOFLAGS=-mod=mod"}, got)
}
