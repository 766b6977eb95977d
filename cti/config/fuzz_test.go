package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/config"
)

// FuzzParse feeds arbitrary bytes to the rules loader: it never panics,
// and every rejection is a *cti.ConfigError (or several) that names where
// the mistake is and what to do. The seeds are every testdata file, good
// and bad (the corpus in testdata/fuzz/FuzzParse adds mutations found
// interesting).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	bad, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, p := range append(files, bad...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("subscribe: {queues: [\"${Q}\"]}\nrules:\n  - name: r\n    identify: [phone]\n    sync: {template: \"{{range .Attributes}}{{.}}{{end}}\"}\n"))
	f.Add([]byte("subscribe: {queues: [q]}\nrules:\n  - name: r\n    subject: \"{{template \\\"x\\\"}}\"\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte("subscribe: &s {queues: [q], users: *s}\n"))
	f.Add([]byte("subscribe: {queues: [q]}\nrules:\n  - name: r\n    identify: [phone]\n    identify_early: ${Q}\n    popup: user\n    popup: none\n---\nrules: [~]\n"))
	f.Add([]byte("subscribe: {queues: [q, ~]}\nrules:\n  - {name: r, identify: [phone], identify_early: \"${E:-true}\"}\nagents: {${Q}: a, queue-1: b, ~: c}\n"))
	env := func(k string) (string, bool) {
		if k == "Q" {
			return "queue-1", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, config.WithLookupEnv(env))
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config and nil error")
			}
			return
		}
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		} else {
			errs = []error{err}
		}
		for _, e := range errs {
			var ce *cti.ConfigError
			if !errors.As(e, &ce) {
				t.Fatalf("error %T %q is not a *cti.ConfigError", e, e)
			}
			if ce.Path == "" || strings.TrimSpace(ce.Reason) == "" {
				t.Fatalf("error without a key path or a reason: %#v", ce)
			}
		}
	})
}
