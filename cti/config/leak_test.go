package config_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is still running
// after them (a worker, timer, socket or HTTP goroutine left behind).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
