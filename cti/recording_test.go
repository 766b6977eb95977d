package cti_test

import (
	"strings"
	"testing"

	"github.com/cxplay/ctikit/cti"
)

func TestRecordingFileName(t *testing.T) {
	for id, want := range map[string]string{
		"4608eafc-a85e-40dc-a16c-7dacacbe0e70": "recording-4608eafc-a85e-40dc-a16c-7dacacbe0e70.mp3",
		"../a b/c_d":                           "recording-abc_d.mp3",
		"":                                     "recording-call.mp3",
		"/..":                                  "recording-call.mp3",
		strings.Repeat("x", 150):               "recording-" + strings.Repeat("x", 100) + ".mp3",
	} {
		if got := cti.RecordingFileName(id); got != want {
			t.Errorf("RecordingFileName(%q) = %q, want %q", id, got, want)
		}
	}
}
