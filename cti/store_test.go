package cti_test

import (
	"testing"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
)

func TestMemoryStore(t *testing.T) {
	ctitest.TestStore(t, func(*testing.T) cti.Store { return cti.NewMemoryStore() })
}
