package cti

import (
	"context"
	"io"
	"strings"
)

// RecordingFile is a recording's audio, open for reading.
type RecordingFile struct {
	// Body is the audio. The caller closes it.
	Body io.ReadCloser
	// Name is a file name for it, e.g. "recording-<id>.mp3".
	Name string
	// ContentType is its MIME type, e.g. "audio/mpeg".
	ContentType string
	// Size is its length in bytes; -1 when unknown.
	Size int64
}

// RecordingOpener opens a conversation's recording as an audio file, for
// a sink that hosts it where agents can play it (see
// syncmap.WithRecordingUpload). *genesys.Client implements it.
type RecordingOpener interface {
	// OpenRecording opens the recording at recordingURL, a Conversation's
	// Links.RecordingURL. A recording still being prepared (transcoded)
	// is a *Deferred error saying when to look again; one that does not
	// exist (deleted, or not this source's) wraps ErrNotFound; other
	// failures are *UpstreamError (wrapped or not).
	OpenRecording(ctx context.Context, recordingURL string) (*RecordingFile, error)
}

// RecordingFileName is the file name of recording id as an MP3:
// "recording-<id>.mp3", the id kept to letters, digits, - and _ and to
// 100 of them ("call" when none is left). A RecordingOpener names the
// file it opens so, and a sink finds a file it attached by it.
func RecordingFileName(id string) string {
	id = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, id)
	if len(id) > 100 {
		id = id[:100]
	}
	if id == "" {
		id = "call"
	}
	return "recording-" + id + ".mp3"
}
