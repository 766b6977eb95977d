package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// The emulators run in a process of their own by default (-emulators
// process), as Genesys Cloud and Zendesk do for a deployed ctikit: their
// goroutines, heap and garbage collection are then not the measured
// process's, and the operating system, not Go's scheduler, shares the CPUs
// between them and ctikit. -emulators inproc runs them in the load tool's
// process (for comparison: BENCHMARKS.md, figure 2). The load tool drives
// the child through net/rpc (JSON) over the child's stdin and stdout; the
// engine talks to both emulators over HTTP and the websocket either way.

// zendeskEmu is the Zendesk emulator as the phases use it:
// *zendesktest.Server in this process, remoteZendesk in the child.
type zendeskEmu interface {
	AddUser(zendesktest.User) zendesktest.User
	AddTicket(zendesktest.Ticket) zendesktest.Ticket
	Users() []zendesktest.User
	Tickets() []zendesktest.Ticket
	Ticket(id int64) (zendesktest.Ticket, bool)
	Requests() []zendesktest.Request
	ResetRequests()
}

// genesysEmu plays calls on the Genesys emulator, here or in the child.
type genesysEmu interface {
	Start(gt.Spec)
	Alert(conv, user string) (leg string)
	Connect(conv, leg string)
	Disconnect(conv, leg string)
	Wrapup(conv, leg, code, notes string)
}

// emulators is both emulators, their addresses and seeded agents, and the
// Zendesk listener's timings.
type emulators struct {
	g genesysEmu
	z zendeskEmu
	Hello
	// timed returns the requests the Zendesk listener timed so far and
	// forgets them.
	timed func() []TimedRequest
	// limits sets the Zendesk emulator's rate limits.
	limits func(Limits)
	close  func()
}

// Hello is what the emulators tell the load tool when they are up.
type Hello struct {
	GenesysURL, ClientID, ClientSecret string
	ZendeskURL                         string
	Agents                             []Agent
}

// Agent is one seeded agent: Genesys user ↔ Zendesk agent.
type Agent struct {
	GenesysID, Email string
	ZendeskID        int64
}

// TimedRequest is one request to the Zendesk emulator as its listener saw
// it: arrival (before the injected delay) and the moment the answer was
// written, on the wall clock (shared by the processes of a machine).
type TimedRequest struct {
	Method, Path, Query string
	Body                []byte // POST bodies only
	Arrived, Answered   time.Time
	Seq                 int64 // the X-Loadtest-Seq header, 0 if none
}

// localGenesys is the Genesys emulator in this process.
type localGenesys struct {
	s     *gt.Server
	mu    sync.Mutex
	convs map[string]*gt.Conversation
}

func (g *localGenesys) Start(sp gt.Spec) {
	cv := g.s.Start(sp)
	g.mu.Lock()
	g.convs[cv.ID] = cv
	g.mu.Unlock()
}

func (g *localGenesys) conv(id string) *gt.Conversation {
	g.mu.Lock()
	defer g.mu.Unlock()
	cv := g.convs[id]
	if cv == nil {
		panic("loadtest: no conversation " + id) // the load tool's own bug
	}
	return cv
}

func (g *localGenesys) Alert(conv, user string) string { return g.conv(conv).Alert(user) }
func (g *localGenesys) Connect(conv, leg string)       { g.conv(conv).Connect(leg) }
func (g *localGenesys) Disconnect(conv, leg string)    { g.conv(conv).Disconnect(leg) }
func (g *localGenesys) Wrapup(conv, leg, code, notes string) {
	cv := g.conv(conv)
	cv.Wrapup(leg, code, notes)
	g.mu.Lock()
	delete(g.convs, conv) // the script's last step
	g.mu.Unlock()
}

// timedZendesk times every request around the Zendesk emulator.
type timedZendesk struct {
	z     *zendesktest.Server
	mu    sync.Mutex
	timed []TimedRequest
}

func (t *timedZendesk) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	t.z.ServeHTTP(rw, r)
	tr := TimedRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Arrived: arrived, Answered: time.Now()}
	if r.Method == http.MethodPost {
		tr.Body = body
	}
	tr.Seq, _ = strconv.ParseInt(r.Header.Get(seqHeader), 10, 64)
	t.mu.Lock()
	t.timed = append(t.timed, tr)
	t.mu.Unlock()
}

func (t *timedZendesk) take() []TimedRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.timed
	t.timed = nil
	return out
}

// seed is what both emulators start with: the four strategies' queues,
// a wrap-up code, and agents agents in both.
func seed(agents int) gt.Seed {
	s := gt.Seed{
		Queues: []gt.Queue{{ID: qUser, Name: "Voice user"}, {ID: qLatest, Name: "Voice latest"},
			{ID: qNew, Name: "Voice new"}, {ID: qNoMatch, Name: "Voice unknown"}},
		WrapupCodes: []gt.WrapupCode{{ID: gt.CodeResolved, Name: "Resolved", Division: gt.Division{ID: "d1", Name: "Support"}}},
	}
	for i := range agents {
		s.Users = append(s.Users, gt.User{ID: fmt.Sprintf("a9e00000-0000-4000-8000-%012d", i),
			Name: fmt.Sprintf("Agent %d", i), Email: fmt.Sprintf("agent%d@example.com", i)})
	}
	return s
}

// emuConfig is how the emulators start: agents seeded in both, and the
// round trip each adds to every request (Zendesk) or REST request
// (Genesys).
type emuConfig struct {
	agents                     int
	zendeskDelay, genesysDelay time.Duration
	cpus                       string // the child's -cpus ("": not pinned)
}

func (c emuConfig) args() []string {
	a := []string{"-emulators-child", "-agents", strconv.Itoa(c.agents),
		"-latency", c.zendeskDelay.String(), "-genesys-latency", c.genesysDelay.String()}
	if c.cpus != "" {
		a = append(a, "-cpus", c.cpus)
	}
	return a
}

// startLocal starts both emulators in this process.
func startLocal(c emuConfig) *emulators {
	sd := seed(c.agents)
	gopts := []gt.Option{gt.WithSeed(sd)}
	if c.genesysDelay > 0 {
		gopts = append(gopts, gt.WithLatency(c.genesysDelay))
	}
	g := gt.NewServer(gopts...)
	z := zendesktest.NewUnstarted(zendesktest.WithLatency(c.zendeskDelay))
	tz := &timedZendesk{z: z}
	zsrv := httptest.NewServer(tz)
	z.URL = zsrv.URL
	e := &emulators{g: &localGenesys{s: g, convs: map[string]*gt.Conversation{}}, z: z, timed: tz.take,
		limits: func(l Limits) {
			z.SetRateLimit(l.Rate, l.RateWindow)
			z.SetTicketUpdateLimit(l.Updates, l.UpdatesWindow)
		},
		close: func() { g.Close(); z.Close(); zsrv.Close() }}
	e.Hello = Hello{GenesysURL: g.URL, ClientID: g.ClientID, ClientSecret: g.ClientSecret, ZendeskURL: zsrv.URL}
	for _, u := range sd.Users {
		zu := z.AddUser(zendesktest.User{Name: u.Name, Email: u.Email, Role: "agent"})
		e.Agents = append(e.Agents, Agent{GenesysID: u.ID, Email: u.Email, ZendeskID: zu.ID})
	}
	return e
}

// newConvID is a fresh conversation id (a UUID, as Genesys's).
func newConvID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Emu is the child's RPC service: the local emulators, method by method.
type Emu struct{ e *emulators }

// Empty is an RPC's absent argument or reply.
type Empty struct{}

// Limits sets the Zendesk emulator's rate limits.
type Limits struct {
	Rate, Updates             int
	RateWindow, UpdatesWindow time.Duration
}

// Step is one step of a call.
type Step struct{ Conv, Leg, User, Code, Notes string }

// TicketReply is Ticket's answer.
type TicketReply struct {
	T  zendesktest.Ticket
	OK bool
}

func (s *Emu) Hello(_ Empty, h *Hello) error      { *h = s.e.Hello; return nil }
func (s *Emu) SetLimits(l Limits, _ *Empty) error { s.e.limits(l); return nil }
func (s *Emu) AddUser(u zendesktest.User, r *zendesktest.User) error {
	*r = s.e.z.AddUser(u)
	return nil
}
func (s *Emu) AddTicket(t zendesktest.Ticket, r *zendesktest.Ticket) error {
	*r = s.e.z.AddTicket(t)
	return nil
}
func (s *Emu) Users(_ Empty, r *[]zendesktest.User) error { *r = nonNil(s.e.z.Users()); return nil }
func (s *Emu) Tickets(_ Empty, r *[]zendesktest.Ticket) error {
	*r = nonNil(s.e.z.Tickets())
	return nil
}
func (s *Emu) Ticket(id int64, r *TicketReply) error {
	r.T, r.OK = s.e.z.Ticket(id)
	return nil
}
func (s *Emu) Requests(_ Empty, r *[]zendesktest.Request) error {
	*r = nonNil(s.e.z.Requests())
	return nil
}
func (s *Emu) ResetRequests(_ Empty, _ *Empty) error  { s.e.z.ResetRequests(); return nil }
func (s *Emu) Timed(_ Empty, r *[]TimedRequest) error { *r = nonNil(s.e.timed()); return nil }
func (s *Emu) Start(sp gt.Spec, _ *Empty) error       { s.e.g.Start(sp); return nil }
func (s *Emu) Alert(st Step, leg *string) error       { *leg = s.e.g.Alert(st.Conv, st.User); return nil }
func (s *Emu) Connect(st Step, _ *Empty) error        { s.e.g.Connect(st.Conv, st.Leg); return nil }
func (s *Emu) Disconnect(st Step, _ *Empty) error     { s.e.g.Disconnect(st.Conv, st.Leg); return nil }
func (s *Emu) Wrapup(st Step, _ *Empty) error {
	s.e.g.Wrapup(st.Conv, st.Leg, st.Code, st.Notes)
	return nil
}

// nonNil is s, or an empty slice: jsonrpc's client takes a null result
// for a malformed answer.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// emulatorChild is the child process (-emulators-child): it starts the
// emulators and serves Emu on stdin/stdout until stdin closes.
func emulatorChild(c emuConfig) {
	// ^C reaches the whole process group: the load tool stops its engine
	// first and then closes our stdin, which ends us.
	signal.Ignore(os.Interrupt)
	e := startLocal(c)
	defer e.close()
	srv := rpc.NewServer()
	if err := srv.Register(&Emu{e}); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest emulators:", err)
		os.Exit(1)
	}
	srv.ServeCodec(jsonrpc.NewServerCodec(stdio{os.Stdin, os.Stdout}))
}

// stdio is a child's stdin and stdout as one connection.
type stdio struct {
	io.Reader
	io.Writer
}

func (stdio) Close() error { return nil }

// pipes is the parent's end of a child's stdin and stdout.
type pipes struct {
	io.ReadCloser                // the child's stdout
	w             io.WriteCloser // the child's stdin
}

func (p pipes) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p pipes) Close() error                { return errors.Join(p.w.Close(), p.ReadCloser.Close()) }

// startRemote starts the emulators in a child process.
func startRemote(c emuConfig) (*emulators, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, c.args()...)
	cmd.Env = emulatorEnv(os.Environ())
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	cl := jsonrpc.NewClient(pipes{out, in})
	r := &remote{c: cl}
	e := &emulators{g: remoteGenesys{r}, z: remoteZendesk{r},
		timed: func() []TimedRequest {
			var t []TimedRequest
			r.call("Timed", Empty{}, &t)
			return t
		},
		limits: func(l Limits) { r.call("SetLimits", l, &Empty{}) },
		close:  func() { cl.Close(); _ = cmd.Wait() }}
	if err := cl.Call("Emu.Hello", Empty{}, &e.Hello); err != nil {
		e.close()
		return nil, fmt.Errorf("emulator process: %w", err)
	}
	return e, nil
}

// emulatorEnv is env without the Go runtime's settings: GOMAXPROCS=4 or
// GOGC=200 on the load tool is meant for ctikit's process, not the
// emulators'.
func emulatorEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG":
			return true
		}
		return false
	})
}

// remote calls the child. The load tool cannot go on without its
// emulators: a failed call ends the process with the reason.
type remote struct{ c *rpc.Client }

func (r *remote) call(method string, args, reply any) {
	if err := r.c.Call("Emu."+method, args, reply); err != nil {
		fmt.Fprintf(os.Stderr, "loadtest: emulator process: %s: %v\n", method, err)
		os.Exit(1)
	}
}

type remoteGenesys struct{ r *remote }

func (g remoteGenesys) Start(sp gt.Spec) { g.r.call("Start", sp, &Empty{}) }
func (g remoteGenesys) Alert(conv, user string) (leg string) {
	g.r.call("Alert", Step{Conv: conv, User: user}, &leg)
	return leg
}
func (g remoteGenesys) Connect(conv, leg string) {
	g.r.call("Connect", Step{Conv: conv, Leg: leg}, &Empty{})
}
func (g remoteGenesys) Disconnect(conv, leg string) {
	g.r.call("Disconnect", Step{Conv: conv, Leg: leg}, &Empty{})
}
func (g remoteGenesys) Wrapup(conv, leg, code, notes string) {
	g.r.call("Wrapup", Step{Conv: conv, Leg: leg, Code: code, Notes: notes}, &Empty{})
}

type remoteZendesk struct{ r *remote }

func (z remoteZendesk) AddUser(u zendesktest.User) (out zendesktest.User) {
	z.r.call("AddUser", u, &out)
	return out
}
func (z remoteZendesk) AddTicket(t zendesktest.Ticket) (out zendesktest.Ticket) {
	z.r.call("AddTicket", t, &out)
	return out
}
func (z remoteZendesk) Users() (out []zendesktest.User) { z.r.call("Users", Empty{}, &out); return out }
func (z remoteZendesk) Tickets() (out []zendesktest.Ticket) {
	z.r.call("Tickets", Empty{}, &out)
	return out
}
func (z remoteZendesk) Ticket(id int64) (zendesktest.Ticket, bool) {
	var r TicketReply
	z.r.call("Ticket", id, &r)
	return r.T, r.OK
}
func (z remoteZendesk) Requests() (out []zendesktest.Request) {
	z.r.call("Requests", Empty{}, &out)
	return out
}
func (z remoteZendesk) ResetRequests() { z.r.call("ResetRequests", Empty{}, &Empty{}) }
