package syncmap_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is still running
// after them (a worker, timer, socket or HTTP goroutine left behind). The
// crash tests' child processes are killed or cut short on purpose: they
// are not checked.
func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}
