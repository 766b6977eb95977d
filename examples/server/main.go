// Command server is ctikit's reference server: it watches Genesys Cloud
// conversations, identifies the customer in Zendesk, screen-pops for the
// agent per the rules, syncs every finished conversation into Zendesk, and
// serves the agent panel, /healthz and /metrics.
//
//	go run ./examples/server                    demo: in-process Genesys and Zendesk emulators with traffic
//	go run ./examples/server -config rules.yaml real mode (credentials from the environment)
//	go run ./examples/server -validate rules.yaml
//	go run ./examples/server -simulate conversation.json [-config rules.yaml]
//	go run ./examples/server -package-app app.zip -panel-url https://HOST/panel/
//
// Environment (real mode): GENESYSCLOUD_OAUTHCLIENT_ID,
// GENESYSCLOUD_OAUTHCLIENT_SECRET, GENESYSCLOUD_REGION (or
// GENESYSCLOUD_API_URL and GENESYSCLOUD_LOGIN_URL), ZENDESK_URL,
// ZENDESK_EMAIL, ZENDESK_API_TOKEN, CTI_LISTEN (default 127.0.0.1:8080),
// CTI_STATE_DIR (durable outbox, default ./ctikit-state), CTI_PHONE_REGION
// (default US), CTI_TALK_APP_ID, CTI_ZAF_PUBLIC_KEY and CTI_ZAF_AUDIENCE,
// CTI_LOG_LEVEL (debug, info, warn, error; default info), CTI_SYNC_BATCH_WAIT
// (how long a sync waits to share a Zendesk write, default 1s),
// CTI_RECORDING_UPLOAD (true: copy voice recordings into Zendesk, where
// agents can play them; default false).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/config"
	zendeskapp "github.com/cxplay/ctikit/examples/server/zendesk-app"
	"github.com/cxplay/ctikit/genesys"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/zendesk"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// cli runs the server and returns the exit status.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "rules file: run against a real Genesys org and Zendesk account (credentials from the environment)")
	validate := fs.String("validate", "", "check a rules file, print what each rule would do, and exit")
	simulate := fs.String("simulate", "", "replay a recorded or scripted conversation against the rules (-config, or the demo rules) without touching Zendesk")
	pkg := fs.String("package-app", "", "write the Zendesk app package (zip) for the agent panel to this file, and exit")
	panelURL := fs.String("panel-url", "", "with -package-app: the https URL of the panel (https://HOST/panel/)")
	speed := fs.Float64("demo-speed", 1, "demo mode: traffic speed factor (2 = twice as fast)")
	deadList := fs.Bool("dead-letters", false, "list the syncs that failed for good (the dead letters in CTI_STATE_DIR), and exit; the server must be stopped")
	requeue := fs.String("requeue", "", "put dead letters back in the outbox, due at once: \"all\" or comma-separated keys from -dead-letters; the server must be stopped")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "ctikit:", err)
		return 1
	}
	switch {
	case *deadList || *requeue != "":
		if err := deadLetters(ctx, env(lookup, "CTI_STATE_DIR", "ctikit-state"), *requeue, stdout); err != nil {
			return fail(err)
		}
		return 0
	case *validate != "":
		if err := validateRules(*validate, stdout); err != nil {
			return fail(err)
		}
		return 0
	case *pkg != "":
		if *panelURL == "" {
			return fail(errors.New("-package-app needs -panel-url https://HOST/panel/"))
		}
		f, err := os.Create(*pkg)
		if err != nil {
			return fail(err)
		}
		if err := zendeskapp.Package(f, *panelURL); err != nil {
			f.Close()
			os.Remove(*pkg)
			return fail(err)
		}
		if err := f.Close(); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "wrote %s (top bar app, signed URLs, panel at %s)\n", *pkg, *panelURL)
		return 0
	case *simulate != "":
		if err := runSimulate(ctx, *simulate, *cfgPath, stdout); err != nil {
			return fail(err)
		}
		return 0
	case *cfgPath != "":
		if err := runReal(ctx, *cfgPath, stderr, lookup); err != nil {
			return fail(err)
		}
		return 0
	default:
		if err := runDemo(ctx, stdout, stderr, lookup, *speed); err != nil {
			return fail(err)
		}
		return 0
	}
}

// deadLetters lists the dead letters of the state directory, or requeues
// those named ("all" for every one). Tries is kept, so the sink still
// checks what an earlier delivery may have written.
func deadLetters(ctx context.Context, dir, requeue string, out io.Writer) error {
	if _, err := os.Stat(filepath.Join(dir, syncmap.StoreFile)); err != nil {
		return fmt.Errorf("no state in %s (set CTI_STATE_DIR): %w", dir, err)
	}
	st, err := syncmap.OpenStore(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	dead, err := st.DeadLetters(ctx)
	if err != nil {
		return err
	}
	if requeue == "" {
		if len(dead) == 0 {
			fmt.Fprintln(out, "no dead letters")
			return nil
		}
		for _, j := range dead {
			fmt.Fprintf(out, "%s\trule %s\tattempts %d\tqueued %s\t%s\n", j.Key, j.Rule, j.Attempts,
				j.EnqueuedAt.UTC().Format(time.RFC3339), j.LastError)
		}
		fmt.Fprintf(out, "%d dead letter(s); fix the cause, stop the server, then -requeue all (or KEY,KEY)\n", len(dead))
		return nil
	}
	var keys []string
	if requeue == "all" {
		for _, j := range dead {
			keys = append(keys, j.Key)
		}
	} else {
		for _, k := range strings.Split(requeue, ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
	}
	var errs []error
	n := 0
	for _, k := range keys {
		if err := st.Requeue(ctx, k, time.Now()); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	fmt.Fprintf(out, "requeued %d of %d dead letter(s); they sync when the server starts\n", n, len(dead))
	return errors.Join(errs...)
}

func env(lookup func(string) (string, bool), k, def string) string {
	if v, ok := lookup(k); ok && v != "" {
		return v
	}
	return def
}

// realSetup reads the environment for real mode; every problem is reported
// at once, each naming what to fix.
func realSetup(cfg *config.Config, lookup func(string) (string, bool), log *slog.Logger) (Setup, error) {
	var errs []error
	gc, err := genesys.ConfigFromLookup(lookup)
	if err != nil {
		errs = append(errs, fmt.Errorf("Genesys Cloud: %w", err))
	}
	zc, err := zendesk.ConfigFromLookup(lookup)
	if err != nil {
		errs = append(errs, fmt.Errorf("Zendesk: %w", err))
	}
	var talk int64
	if v := env(lookup, "CTI_TALK_APP_ID", ""); v != "" {
		talk, err = strconv.ParseInt(v, 10, 64)
		if err != nil || talk <= 0 {
			errs = append(errs, fmt.Errorf("CTI_TALK_APP_ID=%q: want the numeric app id of your Talk Partner Edition app", v))
		}
	}
	zaf, err := zafFromEnv(lookup, zc.URL)
	if err != nil {
		errs = append(errs, err)
	}
	batchWait := DefaultSyncBatchWait
	if v := env(lookup, "CTI_SYNC_BATCH_WAIT", ""); v != "" {
		batchWait, err = time.ParseDuration(v)
		if err != nil || batchWait < 0 || batchWait > time.Minute {
			errs = append(errs, fmt.Errorf("CTI_SYNC_BATCH_WAIT=%q: want a duration from 0s to 1m, e.g. 1s (0s writes every sync at once)", v))
		}
	}
	var upload bool
	if v := env(lookup, "CTI_RECORDING_UPLOAD", ""); v != "" {
		upload, err = strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("CTI_RECORDING_UPLOAD=%q: want true or false", v))
		}
	}
	if len(errs) > 0 {
		return Setup{}, errors.Join(errs...)
	}
	return Setup{
		Config: cfg, Genesys: gc, Zendesk: zc,
		StateDir:    env(lookup, "CTI_STATE_DIR", "ctikit-state"),
		Listen:      env(lookup, "CTI_LISTEN", "127.0.0.1:8080"),
		PhoneRegion: env(lookup, "CTI_PHONE_REGION", "US"),
		TalkAppID:   talk, ZAF: zaf, Log: log,
		SyncBatchWait: batchWait, RecordingUpload: upload,
	}, nil
}

func runReal(ctx context.Context, path string, stderr io.Writer, lookup func(string) (string, bool)) error {
	var level slog.Level // info
	if v := env(lookup, "CTI_LOG_LEVEL", ""); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("CTI_LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(path, config.WithLookupEnv(lookup))
	if err != nil {
		return err
	}
	s, err := realSetup(cfg, lookup, log)
	if err != nil {
		return err
	}
	app, err := Build(s)
	if err != nil {
		return err
	}
	addr, err := app.Listen()
	if err != nil {
		return err
	}
	log.Info("ctikit serving", "addr", addr.String(), "rules", len(cfg.Rules.Rules),
		"queues", len(cfg.Rules.Subscribe.Queues), "users", len(cfg.Rules.Subscribe.Users), "state", s.StateDir)
	if s.ZAF == nil {
		log.Warn("agent panel off: set CTI_ZAF_PUBLIC_KEY and CTI_ZAF_AUDIENCE to serve it to Zendesk")
	}
	return app.Run(ctx)
}

func validateRules(path string, out io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	rs := cfg.Rules
	fmt.Fprintf(out, "%s: OK: %d rule(s), watching %d queue(s) and %d user(s)\n", path, len(rs.Rules), len(rs.Subscribe.Queues), len(rs.Subscribe.Users))
	for i, r := range rs.Rules {
		fmt.Fprintf(out, "\n%d. %s — applies to %s\n", i+1, r.Name, describeWhen(r.When))
		var ids []string
		for _, s := range r.Identify {
			ids = append(ids, s.String())
		}
		if r.Popup == "none" {
			fmt.Fprintf(out, "   pops nothing\n")
		} else {
			fmt.Fprintf(out, "   identifies the customer by %s (first that finds someone wins)\n", orNone(strings.Join(ids, ", then ")))
			fmt.Fprintf(out, "   pops %s when the agent's leg is %s\n", describePopup(string(r.Popup)), r.PopOn)
			fmt.Fprintf(out, "   several matches: %s; no match: %s\n", describeMultiple(string(r.Multiple)), describeNoMatch(string(r.NoMatch)))
		}
		fmt.Fprintf(out, "   after the wrap-up, writes to the %s ticket: %s comment", r.Sync.Ticket, r.Sync.Comment)
		if n := len(r.Sync.Fields); n > 0 {
			fmt.Fprintf(out, ", %d field(s)", n)
		}
		if n := len(r.Sync.Tags); n > 0 {
			fmt.Fprintf(out, ", tags %s", strings.Join(r.Sync.Tags, " "))
		}
		fmt.Fprintln(out)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func describeWhen(w cti.When) string {
	var parts []string
	list := func(what string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, what+" "+strings.Join(vs, " or "))
		}
	}
	list("media", w.Media)
	list("queue", w.Queues)
	list("campaign", w.Campaigns)
	if w.Direction != "" {
		parts = append(parts, string(w.Direction))
	}
	if len(parts) == 0 {
		return "every conversation"
	}
	return strings.Join(parts, ", ")
}

func describePopup(p string) string {
	switch p {
	case "user":
		return "the customer's profile"
	case "ticket:latest_open":
		return "the customer's most recently updated open ticket"
	case "ticket:new":
		return "a new ticket for the customer"
	}
	return p
}

func describeMultiple(m string) string {
	switch m {
	case "choose":
		return "the agent picks from a list"
	case "first":
		return "the most recently updated is popped"
	}
	return "nothing is popped"
}

func describeNoMatch(n string) string {
	switch n {
	case "create_user":
		return "create the customer"
	case "create_ticket":
		return "create a ticket (and the customer)"
	case "create_user_and_ticket":
		return "create the customer and a ticket"
	}
	return "pop nothing"
}
