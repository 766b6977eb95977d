// Command server is ctikit's reference server.
//
// This is the foundation's placeholder: it validates a rules file
// (-validate FILE.yaml) and otherwise serves /healthz on CTI_LISTEN
// (default 127.0.0.1:8080) until interrupted. Demo mode with the Genesys and
// Zendesk emulators, real mode and the agent panel land with the server
// issue.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cxplay/ctikit/cti/config"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ctikit:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	validate := fs.String("validate", "", "check a rules file and print what each rule does, then exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *validate != "" {
		cfg, err := config.Load(*validate)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: OK, %d rule(s)\n", *validate, len(cfg.Rules.Rules))
		for _, r := range cfg.Rules.Rules {
			fmt.Fprintf(out, "- %s: popup %s on %s, several matches: %s, no match: %s, sync to %s ticket (%s comment)\n",
				r.Name, r.Popup, r.PopOn, r.Multiple, r.NoMatch, r.Sync.Ticket, r.Sync.Comment)
		}
		return nil
	}
	addr := os.Getenv("CTI_LISTEN")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"placeholder"}`)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	slog.Info("ctikit reference server placeholder: the demo (emulators, traffic, agent panel) is not built yet", "listen", "http://"+addr)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
