package cti_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
)

// A new conversation is in the state store (as open) before the engine
// acts on it: a pop can take long (Zendesk paced or slow), and if the
// process dies meanwhile, the restarted engine must know the conversation
// to resume it (re-fetch it from Genesys), or a conversation that ended
// during the pop is never synced. Found by the soak (examples/soak at
// Zendesk's 700 requests/minute): 45 legs of voice and email
// conversations, popped on alerting, lost after SIGKILLs.
func TestEngineRecordsConversationBeforeSlowPop(t *testing.T) {
	r := newRig(t)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	r.popper.block = func(cti.PopRequest) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}
	b := support("c-slow")
	require.NoError(t, r.src.Send(r.ctx, b.Alert("l1", "u1")))
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no pop")
	}
	ids, err := r.store.OpenConversations(context.Background())
	require.NoError(t, err)
	assert.Contains(t, ids, "c-slow", "the conversation is recorded as open while its pop runs")
	close(release)
	require.NoError(t, r.stop())
}
