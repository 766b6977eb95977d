package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cxplay/ctikit/cti"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// Options configure a soak run.
type Options struct {
	// Conversations is how many conversations are played in all.
	Conversations int
	// InFlight is the most conversations live at once.
	InFlight int
	// Agents is the number of Genesys agents (each mapped to a Zendesk agent).
	Agents int
	// Kills is how many times the server is SIGKILLed and restarted. Kills
	// are spread over the traffic; the ones left when it is over hit the
	// sync phase.
	Kills int
	// Pace is the time between the steps of one conversation; Hold is how
	// long each conversation stays connected (the time in flight).
	Pace, Hold time.Duration
	// Seed makes the scenarios and kill times reproducible (0: random).
	Seed uint64
	// Server is a built examples/server binary ("": built into Dir).
	Server string
	// Dir holds the state directory, the rules file and the server logs
	// ("": a temporary directory, removed afterwards unless the run fails).
	Dir string
	// Settle bounds the wait for the last syncs after the traffic.
	Settle time.Duration
	// Race builds the server with the race detector.
	Race bool
	// Log receives progress lines (nil: discarded).
	Log io.Writer
	// LogLevel is the server's log level (CTI_LOG_LEVEL; default info).
	LogLevel string
	// ZendeskRate is the emulated account's API limit, requests a minute
	// (default 1,000,000; Zendesk Enterprise: 700).
	ZendeskRate int
	// Talk writes voice and callback syncs as Talk Partner Edition call
	// records (CTI_TALK_APP_ID), each checked to exist exactly once.
	Talk bool
	// Recordings copies voice and callback recordings into Zendesk
	// (CTI_RECORDING_UPLOAD), each checked to be attached exactly once:
	// to its call record's ticket (Talk), or to its leg's sync comment.
	Recordings bool
}

func (o *Options) defaults() {
	if o.Conversations <= 0 {
		o.Conversations = 300
	}
	if o.InFlight <= 0 {
		o.InFlight = 20
	}
	if o.Agents <= 0 {
		o.Agents = 8
	}
	if o.Pace <= 0 {
		o.Pace = 500 * time.Millisecond
	}
	if o.Hold <= 0 {
		o.Hold = o.Pace
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	if o.Settle <= 0 {
		// The sink writes at most syncmap.DefaultUpdateRate tickets a
		// minute (Zendesk's limit): a burst of traffic drains at that pace.
		legs := float64(o.Conversations) * 1.3
		o.Settle = 90*time.Second + time.Duration(legs*1.2*float64(time.Minute)/syncmap.DefaultUpdateRate)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.ZendeskRate <= 0 {
		o.ZendeskRate = 1_000_000
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
}

// Report is what a run found.
type Report struct {
	Seed          uint64
	Conversations int
	ByKind        map[string]int
	Legs          int
	Transfers     int
	Kills         int
	Restarts      int
	// Unobservable conversations started and finished while the server was
	// down: no notification of theirs reached any server, so nothing can
	// sync them (excluded from Lost).
	Unobservable int
	// Synced legs have their marker on exactly one ticket; Lost legs on
	// none; DuplicateSyncs legs on more than one.
	Synced, Lost, DuplicateSyncs int
	LostSample                   []string
	// NeverRecorded legs (not counted in Lost) belong to conversations no
	// server ever saved: their first frames reached a server killed within
	// milliseconds, and the rest were published while none listened.
	NeverRecorded int
	// SyncComments counts the sync comments ("Conversation ID: ..."); a
	// conversation with more than one per leg has DuplicateComments.
	SyncComments, DuplicateComments int
	// Pops counts Talk display calls; DuplicatePops the (agent, record)
	// pairs displayed more than once (every customer is unique to one
	// conversation, so a repeat is a second pop of one leg).
	Pops, DuplicatePops int
	// CrashRepops are second displays of a leg with a kill in between:
	// displayed, then killed before the leg's state was saved (at most
	// once is not guaranteed across a crash in that window).
	CrashRepops int
	// UnpoppedLegs are legs no display was seen for (a leg may end before
	// its pop, e.g. when the server was down throughout).
	UnpoppedLegs   int
	UnpoppedByKind map[string]int
	UnpoppedSample []string
	// Details describe the conversations behind the pop findings.
	Details []string
	// Calls counts Talk call records of voice and callback legs (-talk):
	// MissingCalls legs have none, DuplicateCalls more than one.
	Calls, MissingCalls, DuplicateCalls int
	// Recordings counts recording files attached in Zendesk
	// (-recordings): MissingRecordings are synced legs of recorded calls
	// without theirs (a call record without recording_url, or a sync comment
	// without the file), DuplicateRecordings files attached twice (to one
	// ticket with Talk, to one comment without).
	Recordings, MissingRecordings, DuplicateRecordings int
	// DuplicateUsers: customers created more than once in Zendesk.
	DuplicateUsers int
	Pending, Dead  int
	// Server figures, sampled from /metrics (peak over the run, and after
	// the last sync with nothing in flight).
	PeakRSS, PeakHeap, FinalRSS, FinalHeap int64
	PeakGoroutines, IdleGoroutines         int
	FinalGoroutines                        int
	PeakInFlight                           int
	Duration                               time.Duration
	Problems                               []string
}

// OK reports whether the run met the guarantees.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak seed=%d: %d conversations (%s), %d legs (%d transfers), %d kills, %d restarts, %s\n",
		r.Seed, r.Conversations, kinds(r.ByKind), r.Legs, r.Transfers, r.Kills, r.Restarts, r.Duration.Round(time.Second))
	fmt.Fprintf(&b, "  syncs: %d legs synced exactly once, %d lost, %d synced twice; %d sync comments, %d duplicate; outbox pending %d, dead %d\n",
		r.Synced, r.Lost, r.DuplicateSyncs, r.SyncComments, r.DuplicateComments, r.Pending, r.Dead)
	if r.NeverRecorded > 0 {
		fmt.Fprintf(&b, "  %d legs of conversations no server ever saved (killed within ms of their first frame, the rest published while down): not synced, not counted as lost\n", r.NeverRecorded)
	}
	if r.Calls > 0 || r.MissingCalls > 0 {
		fmt.Fprintf(&b, "  talk: %d call records, %d voice legs without one, %d duplicates\n", r.Calls, r.MissingCalls, r.DuplicateCalls)
	}
	if r.Recordings > 0 || r.MissingRecordings > 0 {
		fmt.Fprintf(&b, "  recordings: %d attached, %d synced voice legs without theirs, %d attached twice\n", r.Recordings, r.MissingRecordings, r.DuplicateRecordings)
	}
	fmt.Fprintf(&b, "  pops: %d displays, %d duplicate, %d again after a kill, %d legs never popped; %d customers created twice; %d conversations wholly inside a downtime\n",
		r.Pops, r.DuplicatePops, r.CrashRepops, r.UnpoppedLegs, r.DuplicateUsers, r.Unobservable)
	if len(r.LostSample) > 0 {
		fmt.Fprintf(&b, "  legs not synced, e.g.: %s\n", strings.Join(r.LostSample, " "))
	}
	if r.UnpoppedLegs > 0 {
		fmt.Fprintf(&b, "  legs never popped by kind: %s; e.g. %s\n", kinds(r.UnpoppedByKind), strings.Join(r.UnpoppedSample, " "))
	}
	fmt.Fprintf(&b, "  server: peak %d conversations in flight, peak RSS %s, peak heap %s, peak goroutines %d; idle after the run: RSS %s, heap %s, goroutines %d (at start %d)\n",
		r.PeakInFlight, mib(r.PeakRSS), mib(r.PeakHeap), r.PeakGoroutines, mib(r.FinalRSS), mib(r.FinalHeap), r.FinalGoroutines, r.IdleGoroutines)
	for _, d := range r.Details {
		fmt.Fprintf(&b, "    %s\n", d)
	}
	if r.OK() {
		b.WriteString("  PASS\n")
	} else {
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "  FAIL: %s\n", p)
		}
	}
	return b.String()
}

func kinds(m map[string]int) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for i, k := range ks {
		ks[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(ks, ", ")
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// played is one conversation as the harness scripted it.
type played struct {
	id         string
	kind       string
	legs       []string
	agents     []string // Genesys user id per leg
	start, end time.Time
	customer   string // unique phone, email or handle
	name       string // unique customer name
	recorded   bool   // Genesys recorded it (the emulator records voice calls)
}

type window struct{ from, to time.Time }

// talkApp is the Talk Partner Edition app id the soak's server writes call
// records with (-talk).
const talkApp = 777

type harness struct {
	o     Options
	dir   string
	bin   string
	rules string
	g     *gt.Server
	z     *zendesktest.Server
	rng   *rand.Rand
	rngMu sync.Mutex

	agents   []string // Genesys user ids
	zAgents  map[string]int64
	mu       sync.Mutex
	cur      *child
	down     []window
	kills    int
	restarts int
	convs    []*played
	inflight int
	// lostConvs counts the lost legs of each conversation.
	lostConvs map[*played]int
	rep       Report
}

// Run runs a soak and returns its report; err is for a harness failure
// (the report says whether the server met its guarantees).
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	h := &harness{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5851f42d4c957f2d)), zAgents: map[string]int64{}}
	h.rep.Seed = o.Seed
	h.rep.ByKind = map[string]int{}
	start := time.Now()
	var err error
	h.dir = o.Dir
	if h.dir == "" {
		if h.dir, err = os.MkdirTemp("", "ctikit-soak-*"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(h.dir, "state"), 0o700); err != nil {
		return nil, err
	}
	if h.bin = o.Server; h.bin == "" {
		if h.bin, err = Build(ctx, h.dir, o.Race); err != nil {
			return nil, err
		}
	}
	h.setup()
	defer h.g.Close()
	defer h.z.Close()
	if err := os.WriteFile(filepath.Join(h.dir, "rules.yaml"), []byte(h.rulesYAML()), 0o600); err != nil {
		return nil, err
	}
	h.rules = filepath.Join(h.dir, "rules.yaml")

	c, err := h.startChild(ctx)
	if err != nil {
		return nil, err
	}
	h.setCur(c)
	defer func() {
		if c := h.getCur(); c != nil {
			c.kill()
		}
	}()
	time.Sleep(time.Second) // let it settle before the idle goroutine count
	if m, err := c.metrics(); err == nil {
		h.rep.IdleGoroutines = int(m["go_goroutines"])
	}

	sctx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() { h.sample(sctx) })
	defer func() { stopSampling(); sampler.Wait() }()

	// Traffic, and the killer alongside it.
	trafficDone := make(chan struct{})
	killed := make(chan error, 1)
	go func() { killed <- h.killer(ctx, trafficDone) }()
	h.traffic(ctx)
	close(trafficDone)
	fmt.Fprintf(o.Log, "soak: traffic done (%d conversations) after %v; waiting for the kills and the syncs\n", len(h.convs), time.Since(start).Round(time.Second))
	if err := <-killed; err != nil {
		return nil, err
	}
	if err := h.settle(ctx); err != nil {
		fmt.Fprintf(o.Log, "soak: %v\n", err)
	}
	stopSampling()
	sampler.Wait()
	h.check()
	h.rep.Duration = time.Since(start)
	c = h.getCur()
	if m, err := c.metrics(); err == nil {
		h.rep.FinalGoroutines = int(m["go_goroutines"])
		h.rep.FinalRSS = int64(m["process_resident_memory_bytes"])
		h.rep.FinalHeap = int64(m["go_memstats_heap_inuse_bytes"])
		h.rep.Pending = int(m["ctikit_syncs_pending"])
		h.rep.Dead = int(m["ctikit_syncs_dead"])
		if h.rep.Pending != 0 {
			h.problem("%d sync jobs still pending", h.rep.Pending)
		}
		if h.rep.Dead != 0 {
			h.problem("%d sync jobs in the dead letters", h.rep.Dead)
		}
	} else {
		h.problem("metrics after the run: %v", err)
	}
	if err := c.stop(); err != nil {
		h.problem("graceful stop: %v", err)
	}
	h.setCur(nil)
	h.classifyLost()
	if o.Dir == "" && h.rep.OK() {
		os.RemoveAll(h.dir)
	} else {
		fmt.Fprintf(o.Log, "soak: state, rules and server logs kept in %s\n", h.dir)
	}
	return &h.rep, nil
}

// killedBetween reports whether the server was killed between a and b.
func (h *harness) killedBetween(a, b time.Time) bool {
	for _, w := range h.down {
		if w.from.After(a) && w.from.Before(b) {
			return true
		}
	}
	return false
}

// classifyLost looks up the conversations of the lost legs in the state
// store (the server is stopped): one with no record was never durably seen
// by any server — its first frames reached a server killed before it
// saved anything, and the rest were published while no server listened —
// so no server could know it existed (a limit of a notification-only
// input, like a conversation wholly inside a downtime). The others are
// real losses.
func (h *harness) classifyLost() {
	r := &h.rep
	if len(h.lostConvs) > 0 {
		st, err := syncmap.OpenStore(filepath.Join(h.dir, "state"))
		if err != nil {
			h.problem("open the state store to classify lost legs: %v", err)
		} else {
			for p, legs := range h.lostConvs {
				if _, err := st.LoadConversation(context.Background(), p.id); errors.Is(err, cti.ErrNotFound) {
					r.Lost -= legs
					r.NeverRecorded += legs
				}
			}
			st.Close()
		}
	}
	if r.Lost > 0 {
		h.problem("%d legs never synced", r.Lost)
	}
}

func (h *harness) problem(format string, args ...any) {
	h.rep.Problems = append(h.rep.Problems, fmt.Sprintf(format, args...))
}

// Build compiles examples/server into dir and returns the binary's path.
func Build(ctx context.Context, dir string, race bool) (string, error) {
	bin := filepath.Join(dir, "ctikit-server")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "github.com/cxplay/ctikit/examples/server")
	cmd := exec.CommandContext(ctx, "go", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build examples/server: %v\n%s", err, out)
	}
	return bin, nil
}

// setup starts the emulators with o.Agents agents on both sides.
func (h *harness) setup() {
	seed := gt.DemoSeed()
	seed.Users = nil
	var zusers []zendesktest.User
	for i := range h.o.Agents {
		id := fmt.Sprintf("a9e17000-0000-4000-8000-%012d", i+1)
		seed.Users = append(seed.Users, gt.User{ID: id, Name: fmt.Sprintf("Agent %d", i+1), Email: fmt.Sprintf("agent%d@genesys.example", i+1)})
		zid := int64(300 + i)
		zusers = append(zusers, zendesktest.User{ID: zid, Name: fmt.Sprintf("Agent %d", i+1), Email: fmt.Sprintf("agent%d@example.com", i+1), Role: "agent"})
		h.agents = append(h.agents, id)
		h.zAgents[id] = zid
	}
	h.g = gt.NewServer(gt.WithSeed(seed))
	// A high-volume account: the soak plays traffic far faster than a
	// contact center of this size would, and the point is crashes, not
	// Zendesk's rate limits (the sink still paces its ticket writes at
	// syncmap.DefaultUpdateRate a minute).
	h.z = zendesktest.NewServer(zendesktest.WithRateLimit(h.o.ZendeskRate, time.Minute), zendesktest.WithIndexLag(time.Second))
	h.z.Seed(zendesktest.Seed{Users: zusers})
}

// rulesYAML covers every media: voice and callbacks pop the latest open
// ticket (creating user and ticket for unknown callers), email pops a new
// ticket, messaging and social pop the user on connect; every leg syncs.
func (h *harness) rulesYAML() string {
	var b strings.Builder
	b.WriteString("subscribe:\n  queues:\n")
	for _, q := range []string{gt.QueueSupport, gt.QueueSales, gt.QueueBilling, gt.QueueSocial} {
		fmt.Fprintf(&b, "    - %s\n", q)
	}
	b.WriteString("  users:\n")
	for _, a := range h.agents {
		fmt.Fprintf(&b, "    - %s\n", a)
	}
	b.WriteString(`rules:
  - name: voice
    when: {media: [voice, callback]}
    identify: [phone]
    popup: ticket:latest_open
    pop_on: alerting
    multiple: first
    nomatch: create_user_and_ticket
    sync:
      ticket: popped
      comment: internal
      fields: {"360000000001": "{{.CallDuration}}"}
      tags: [genesys, voice]
  - name: email
    when: {media: [email]}
    identify: [email]
    popup: ticket:new
    nomatch: create_user_and_ticket
    sync: {ticket: popped, comment: internal, tags: [genesys, email]}
  - name: messaging
    when: {media: [chat, message]}
    identify: [phone, social, email]
    popup: user
    pop_on: connected
    multiple: first
    nomatch: create_user
    sync: {ticket: latest_open, comment: internal, tags: [genesys, messaging]}
time:
  zone: UTC
agents:
`)
	for i := range h.o.Agents {
		fmt.Fprintf(&b, "  agent%d@genesys.example: agent%d@example.com\n", i+1, i+1)
	}
	return b.String()
}

// --- the child server ---------------------------------------------------

type child struct {
	cmd  *exec.Cmd
	addr string
	log  *os.File
	done chan struct{}
	err  error
}

func (h *harness) setCur(c *child) { h.mu.Lock(); h.cur = c; h.mu.Unlock() }
func (h *harness) getCur() *child  { h.mu.Lock(); defer h.mu.Unlock(); return h.cur }

// startChild starts the server in real mode on the emulators and waits
// until /healthz says it is connected to both.
func (h *harness) startChild(ctx context.Context) (*child, error) {
	h.mu.Lock()
	n := h.restarts
	h.mu.Unlock()
	lf, err := os.Create(filepath.Join(h.dir, fmt.Sprintf("server-%03d.log", n)))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(h.bin, "-config", h.rules)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"GENESYSCLOUD_OAUTHCLIENT_ID=" + h.g.ClientID,
		"GENESYSCLOUD_OAUTHCLIENT_SECRET=" + h.g.ClientSecret,
		"GENESYSCLOUD_API_URL=" + h.g.URL,
		"GENESYSCLOUD_LOGIN_URL=" + h.g.URL,
		"ZENDESK_URL=" + h.z.URL,
		"ZENDESK_EMAIL=" + zendesktest.DefaultEmail,
		"ZENDESK_API_TOKEN=" + zendesktest.DefaultAPIToken,
		"CTI_STATE_DIR=" + filepath.Join(h.dir, "state"),
		"CTI_LISTEN=127.0.0.1:0",
		"CTI_PHONE_REGION=US",
		"CTI_LOG_LEVEL=" + h.o.LogLevel,
	}
	if h.o.Talk {
		cmd.Env = append(cmd.Env, "CTI_TALK_APP_ID="+strconv.Itoa(talkApp))
	}
	if h.o.Recordings {
		cmd.Env = append(cmd.Env, "CTI_RECORDING_UPLOAD=true")
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	cmd.Stdout = lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	c := &child{cmd: cmd, log: lf, done: make(chan struct{})}
	addr := make(chan string, 1)
	connected := make(chan struct{})
	var copied sync.WaitGroup
	copied.Go(func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		seen := false
		for sc.Scan() {
			line := sc.Bytes()
			lf.Write(line)
			lf.Write([]byte{'\n'})
			switch {
			case strings.Contains(string(line), `"ctikit serving"`):
				var m struct{ Addr string }
				if json.Unmarshal(line, &m) == nil && m.Addr != "" {
					select {
					case addr <- m.Addr:
					default:
					}
				}
			case !seen && strings.Contains(string(line), `"genesys: notification socket connected"`):
				seen = true
				close(connected)
			}
		}
	})
	go func() {
		copied.Wait()
		c.err = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	// Up when it listens and its notification socket is connected (the
	// health report is cached for 5 s, too coarse for a restart).
	timeout := time.After(60 * time.Second)
	fail := func(err error) (*child, error) {
		c.kill()
		return nil, err
	}
	for c.addr == "" || connected != nil {
		select {
		case c.addr = <-addr:
		case <-connected:
			connected = nil
		case <-c.done:
			return nil, fmt.Errorf("server exited at start (%v): see %s", c.err, lf.Name())
		case <-timeout:
			return fail(fmt.Errorf("server not up in 60 s: see %s", lf.Name()))
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	return c, nil
}

// kill SIGKILLs the server and waits for it to be gone.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stop asks the server to shut down (SIGTERM) and waits for it.
func (c *child) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.err
	case <-time.After(30 * time.Second):
		c.kill()
		return errors.New("did not stop in 30 s after SIGTERM")
	}
}

// metrics scrapes the server's /metrics (untyped: name → value, labels
// dropped, last sample wins).
func (c *child) metrics() (map[string]float64, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + c.addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

// --- kills ----------------------------------------------------------------

// killer SIGKILLs the server o.Kills times at random moments and restarts
// it on the same state directory each time.
func (h *harness) killer(ctx context.Context, trafficDone <-chan struct{}) error {
	if h.o.Kills == 0 {
		return nil
	}
	// The traffic lasts about Conversations/InFlight conversation lengths.
	per := h.o.Hold + 4*h.o.Pace
	expect := time.Duration(float64(per) * float64(h.o.Conversations) / float64(h.o.InFlight))
	gap := expect / time.Duration(h.o.Kills+1)
	for k := range h.o.Kills {
		d := time.Duration(float64(gap) * (0.5 + h.float()))
		select {
		case <-trafficDone:
			// Kills left for the sync phase: shorter gaps.
			d = time.Duration(float64(time.Second) * (0.2 + h.float()))
		default:
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
		c := h.getCur()
		killedAt := time.Now()
		c.kill()
		h.mu.Lock()
		h.kills++
		h.mu.Unlock()
		// Down for a moment, as a supervisor would restart it.
		time.Sleep(time.Duration(float64(300*time.Millisecond) * h.float()))
		h.mu.Lock()
		h.restarts++
		h.mu.Unlock()
		nc, err := h.startChild(ctx)
		if err != nil {
			return fmt.Errorf("restart %d: %w", k+1, err)
		}
		h.setCur(nc)
		h.mu.Lock()
		h.down = append(h.down, window{killedAt, time.Now()})
		h.mu.Unlock()
		fmt.Fprintf(h.o.Log, "soak: kill %d/%d, back after %v\n", k+1, h.o.Kills, time.Since(killedAt).Round(time.Millisecond))
	}
	return nil
}

func (h *harness) float() float64 {
	h.rngMu.Lock()
	defer h.rngMu.Unlock()
	return h.rng.Float64()
}

func (h *harness) intn(n int) int {
	h.rngMu.Lock()
	defer h.rngMu.Unlock()
	return h.rng.IntN(n)
}

// sample records the server's peak memory and goroutines.
func (h *harness) sample(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c := h.getCur()
		if c == nil {
			continue
		}
		m, err := c.metrics()
		if err != nil {
			continue // being killed
		}
		h.mu.Lock()
		h.rep.PeakRSS = max(h.rep.PeakRSS, int64(m["process_resident_memory_bytes"]))
		h.rep.PeakHeap = max(h.rep.PeakHeap, int64(m["go_memstats_heap_inuse_bytes"]))
		h.rep.PeakGoroutines = max(h.rep.PeakGoroutines, int(m["go_goroutines"]))
		h.rep.PeakInFlight = max(h.rep.PeakInFlight, h.inflight)
		h.mu.Unlock()
	}
}

// --- traffic --------------------------------------------------------------

// traffic plays o.Conversations conversations, at most o.InFlight at once,
// cycling through every media.
func (h *harness) traffic(ctx context.Context) {
	all := gt.AllKinds()
	slots := make(chan struct{}, h.o.InFlight)
	var wg sync.WaitGroup
	for i := range h.o.Conversations {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		k := all[i%len(all)]
		transfer := h.intn(4) == 0 && h.o.Agents > 1
		a1 := h.agents[h.intn(len(h.agents))]
		a2 := a1
		for a2 == a1 && transfer {
			a2 = h.agents[h.intn(len(h.agents))]
		}
		hangs := h.intn(2) == 0
		wg.Go(func() {
			defer func() { <-slots }()
			h.mu.Lock()
			h.inflight++
			h.mu.Unlock()
			p := h.play(i, k, a1, a2, transfer, hangs)
			h.mu.Lock()
			h.inflight--
			h.convs = append(h.convs, p)
			h.mu.Unlock()
		})
		// Stagger the starts over a pace.
		time.Sleep(h.o.Pace / time.Duration(h.o.InFlight))
	}
	wg.Wait()
}

func (h *harness) play(i int, k gt.Kind, a1, a2 string, transfer, hangs bool) *played {
	kind := string(k.Media)
	if k.MessageType != "" {
		kind += "/" + k.MessageType
	}
	phone := fmt.Sprintf("+1650%07d", 5000000+i)
	email := fmt.Sprintf("soak-%d@customers.example", i)
	handle := fmt.Sprintf("soak%08d", i)
	sp := gt.Spec{Media: k.Media, MessageType: k.MessageType, Name: fmt.Sprintf("Soak Customer %d", i),
		Queue: gt.QueueSupport, Attributes: map[string]string{"soak.index": strconv.Itoa(i)}}
	p := &played{kind: kind, start: time.Now(), name: sp.Name}
	switch {
	case k.Media == gt.MediaEmail || k.Media == gt.MediaChat:
		sp.From, p.customer = email, email
	case k.Media == gt.MediaVoice || k.Media == gt.MediaCallback || k.MessageType == "sms" || k.MessageType == "whatsapp":
		sp.From, p.customer = phone, phone
	default:
		sp.From, p.customer = handle, handle
		sp.Queue = gt.QueueSocial
	}
	switch k.Media {
	case gt.MediaEmail:
		sp.Subject, sp.Body = fmt.Sprintf("Order %d", i), "Hello, where is my order?"
	case gt.MediaChat, gt.MediaMessage, gt.MediaSocial:
		sp.Body = "Hi, a question about my order."
	}
	pace := h.o.Pace
	cv := h.g.Start(sp)
	p.id, p.recorded = cv.ID, cv.RecordingID() != ""
	leg := cv.Alert(a1)
	p.legs, p.agents = append(p.legs, leg), append(p.agents, a1)
	time.Sleep(pace)
	cv.Connect(leg)
	if k.Media == gt.MediaChat || k.Media == gt.MediaMessage || k.Media == gt.MediaSocial {
		cv.Say(leg, "Hello! Let me look into that.")
		cv.Say("", "Thanks.")
	}
	time.Sleep(h.o.Hold)
	last := leg
	if transfer {
		cv.Transfer(leg, sp.Queue)
		time.Sleep(pace / 2)
		l2 := cv.Alert(a2)
		p.legs, p.agents = append(p.legs, l2), append(p.agents, a2)
		time.Sleep(pace / 2)
		cv.Connect(l2)
		time.Sleep(pace)
		last = l2
	}
	if k.Media == gt.MediaEmail {
		cv.Reply("It ships today.")
	}
	if hangs {
		cv.End()
	} else {
		cv.Disconnect(last)
	}
	for _, l := range p.legs {
		time.Sleep(pace / 2)
		cv.Wrapup(l, gt.CodeResolved, "Soak wrap-up for "+cv.ID)
	}
	p.end = time.Now()
	return p
}

// --- checks ---------------------------------------------------------------

// observable reports whether any server could have seen the conversation:
// not all of it inside one downtime.
func (h *harness) observable(p *played) bool {
	for _, w := range h.down {
		if !p.start.Before(w.from) && !p.end.After(w.to) {
			return false
		}
	}
	return true
}

// settle waits until every observable leg's marker is in Zendesk and the
// outbox is empty.
func (h *harness) settle(ctx context.Context) error {
	deadline := time.Now().Add(h.o.Settle)
	for {
		missing := 0
		markers := h.markers()
		for _, p := range h.convs {
			if !h.observable(p) {
				continue
			}
			for _, l := range p.legs {
				if len(markers[syncmap.MarkerTag(cti.JobKey(p.id, l))]) == 0 {
					missing++
				}
			}
		}
		pending := -1
		if m, err := h.getCur().metrics(); err == nil {
			pending = int(m["ctikit_syncs_pending"])
		}
		if missing == 0 && pending == 0 {
			time.Sleep(time.Second) // anything on its way lands now
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up waiting after %v: %d legs not synced, %d jobs pending", h.o.Settle, missing, pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// markers maps each marker tag to the tickets that carry it.
func (h *harness) markers() map[string][]int64 {
	out := map[string][]int64{}
	for _, tk := range h.z.Tickets() {
		for _, tag := range tk.Tags {
			if strings.HasPrefix(tag, "ctikit_") {
				out[tag] = append(out[tag], tk.ID)
			}
		}
	}
	return out
}

func (h *harness) check() {
	r := &h.rep
	r.Kills, r.Restarts = h.kills, h.restarts
	r.Conversations = len(h.convs)
	markers := h.markers()
	var lost []*played
	h.lostConvs = map[*played]int{}
	calls := map[string]int{}      // marker → Talk call records
	callRec := map[string]string{} // marker → the call record's recording_url
	for _, c := range h.z.Calls() {
		if ext, _ := c.Fields["external_id"].(string); ext != "" {
			calls[ext]++
			r.Calls++
			callRec[ext], _ = c.Fields["recording_url"].(string)
		}
	}
	// Recording files: by ticket (Talk: once per ticket) and by sync
	// comment (without Talk: one per comment).
	inComment := map[string]int{} // conversation id → sync comments carrying one file
	for _, tk := range h.z.Tickets() {
		names := map[string]int{}
		for _, c := range tk.Comments {
			n := 0
			for _, a := range c.Attachments {
				if strings.HasPrefix(a.FileName, "recording-") {
					names[a.FileName]++
					n++
					r.Recordings++
				}
			}
			if _, rest, ok := strings.Cut(c.Body, "Conversation ID: "); ok && n > 0 {
				id, _, _ := strings.Cut(rest, "\n")
				inComment[strings.TrimSpace(id)]++
				r.DuplicateRecordings += n - 1
			}
		}
		if h.o.Talk {
			for _, k := range names {
				r.DuplicateRecordings += k - 1
			}
		}
	}
	comments := map[string]int{} // conversation id → sync comments
	tickets := h.z.Tickets()
	for _, tk := range tickets {
		for _, c := range tk.Comments {
			if _, rest, ok := strings.Cut(c.Body, "Conversation ID: "); ok {
				id, _, _ := strings.Cut(rest, "\n")
				comments[strings.TrimSpace(id)]++
			}
		}
	}
	for _, p := range h.convs {
		r.ByKind[p.kind]++
		r.Legs += len(p.legs)
		if len(p.legs) > 1 {
			r.Transfers++
		}
		if !h.observable(p) {
			r.Unobservable++
			continue
		}
		for _, l := range p.legs {
			switch n := len(markers[syncmap.MarkerTag(cti.JobKey(p.id, l))]); {
			case n == 1:
				r.Synced++
			case n == 0:
				r.Lost++
				if len(r.LostSample) < 10 {
					r.LostSample = append(r.LostSample, p.id+"/"+l+" ("+p.kind+")")
				}
				lost = append(lost, p)
				h.lostConvs[p]++
			default:
				r.DuplicateSyncs++
			}
		}
		n := comments[p.id]
		r.SyncComments += n
		if n > len(p.legs) {
			r.DuplicateComments += n - len(p.legs)
		}
		if h.o.Talk && (p.kind == "voice" || p.kind == "callback") {
			for _, l := range p.legs {
				marker := syncmap.MarkerTag(cti.JobKey(p.id, l))
				switch n := calls[marker]; {
				case n == 0:
					r.MissingCalls++
				case n > 1:
					r.DuplicateCalls += n - 1
				}
				if h.o.Recordings && p.recorded && calls[marker] > 0 && !strings.Contains(callRec[marker], "/attachments/token/") {
					r.MissingRecordings++
				}
			}
		}
		if h.o.Recordings && !h.o.Talk && p.recorded {
			if missing := n - inComment[p.id]; missing > 0 {
				r.MissingRecordings += missing
			}
		}
	}
	// Pops: every customer is unique to its conversation, so a display
	// belongs to the conversation of the customer it shows (the user, or
	// the requester of the ticket), and to the leg of its agent.
	byName := map[string]*played{}
	for _, p := range h.convs {
		byName[p.name] = p
	}
	owner := func(kind string, id int64) *played {
		if kind == "ticket" {
			tk, ok := h.z.Ticket(id)
			if !ok {
				return nil
			}
			id = tk.RequesterID
		}
		u, ok := h.z.User(id)
		if !ok {
			return nil
		}
		return byName[u.Name]
	}
	type legKey struct {
		conv  *played
		agent int64
	}
	pops := map[legKey]int{}
	popAt := map[legKey][]time.Time{}
	shown := map[*played][]string{}
	for _, d := range h.z.Displays(0) {
		r.Pops++
		if p := owner(d.Kind, d.ID); p != nil {
			pops[legKey{p, d.AgentID}]++
			popAt[legKey{p, d.AgentID}] = append(popAt[legKey{p, d.AgentID}], d.At)
			shown[p] = append(shown[p], fmt.Sprintf("agent %d %s/%d at +%v", d.AgentID, d.Kind, d.ID, d.At.Sub(p.start).Round(time.Millisecond)))
		}
	}
	detail := func(p *played) {
		if len(r.Details) >= 20 {
			return
		}
		var agents []string
		for _, a := range p.agents {
			agents = append(agents, strconv.FormatInt(h.zAgents[a], 10))
		}
		var downs []string
		for _, w := range h.down {
			if w.to.After(p.start) && w.from.Before(p.end.Add(time.Second)) {
				downs = append(downs, fmt.Sprintf("+%v..+%v", w.from.Sub(p.start).Round(time.Millisecond), w.to.Sub(p.start).Round(time.Millisecond)))
			}
		}
		r.Details = append(r.Details, fmt.Sprintf("%s %s legs to agents %v, lasted %v; pops: %v; server down: %v",
			p.id, p.kind, agents, p.end.Sub(p.start).Round(time.Millisecond), shown[p], downs))
	}
	for _, p := range lost {
		detail(p)
	}
	r.UnpoppedByKind = map[string]int{}
	for _, p := range h.convs {
		for _, a := range p.agents {
			switch n := pops[legKey{p, h.zAgents[a]}]; {
			case n == 0:
				r.UnpoppedLegs++
				r.UnpoppedByKind[p.kind]++
				if len(r.UnpoppedSample) < 5 {
					r.UnpoppedSample = append(r.UnpoppedSample, p.id)
				}
				detail(p)
			case n > 1:
				// A kill between two displays of a leg is the documented
				// window (displayed, then killed before the leg's state
				// was saved): counted apart. Otherwise a real duplicate.
				at := popAt[legKey{p, h.zAgents[a]}]
				for k := 1; k < len(at); k++ {
					if h.killedBetween(at[k-1], at[k]) {
						r.CrashRepops++
					} else {
						r.DuplicatePops++
					}
				}
				detail(p)
			}
		}
	}
	// Customers created more than once.
	created := map[string]int{}
	for _, u := range h.z.Users() {
		vs := append([]string{u.Phone, u.Email}, identities(u)...)
		slices.Sort(vs)
		for _, v := range slices.Compact(vs) {
			if strings.HasPrefix(v, "+16505") || strings.HasPrefix(v, "soak") {
				created[v]++
			}
		}
	}
	for _, n := range created {
		if n > 1 {
			r.DuplicateUsers++
		}
	}
	if r.DuplicateSyncs > 0 {
		h.problem("%d legs synced to more than one ticket", r.DuplicateSyncs)
	}
	if r.DuplicateComments > 0 {
		h.problem("%d duplicate sync comments", r.DuplicateComments)
	}
	if r.MissingCalls > 0 {
		h.problem("%d voice legs without their Talk call record", r.MissingCalls)
	}
	if r.DuplicateCalls > 0 {
		h.problem("%d duplicate Talk call records", r.DuplicateCalls)
	}
	if r.MissingRecordings > 0 {
		h.problem("%d synced voice legs without their recording in Zendesk", r.MissingRecordings)
	}
	if r.DuplicateRecordings > 0 {
		h.problem("%d recordings attached twice", r.DuplicateRecordings)
	}
	if r.DuplicatePops > 0 {
		h.problem("%d duplicate pops", r.DuplicatePops)
	}
	if r.Kills < h.o.Kills {
		h.problem("only %d of %d kills happened", r.Kills, h.o.Kills)
	}
}

func identities(u zendesktest.User) []string {
	var out []string
	for _, i := range u.Identities {
		out = append(out, i.Value)
	}
	return slices.Compact(out)
}
