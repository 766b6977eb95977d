package syncmaptest_test

import (
	"testing"

	"github.com/cxplay/ctikit/syncmap/syncmaptest"
)

func TestFakeConforms(t *testing.T) {
	syncmaptest.TestZendesk(t, func(t *testing.T) syncmaptest.Env {
		f := syncmaptest.NewFake()
		f.RejectField(360000000099, "Field Priority level: is invalid")
		return syncmaptest.Env{Zendesk: f, RequesterID: 501, AgentID: 901, FieldID: 360000000001,
			RejectedFieldID: 360000000099, RejectedValue: "urgent!!", TalkAppID: 777, Fetch: f.Fetch}
	})
}
