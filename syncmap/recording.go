package syncmap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// WithRecordingUpload makes the sink host voice and callback recordings
// in Zendesk, where agents can play them: Zendesk does not store a
// recording its voice comment plays, it needs a hosted MP3 or WAV, and
// Genesys Cloud's recording address is an API resource behind OAuth. The
// sink opens the recording with o (*genesys.Client) when it writes the
// sync, uploads it (the Zendesk implementation must be an Uploader) and
// attaches it to the ticket, never to a public comment (the requester
// would be mailed it):
//
//   - with WithTalkApp, the call record's recording_url is the uploaded
//     file, which the Talk Partner Edition voice comment plays; the file
//     is attached to an internal note on the same ticket (an upload not
//     attached to a comment within an hour is deleted by Zendesk), in
//     the update that marks the ticket when the recording is ready by
//     then. Once per ticket: the legs of a transferred call, and a retry,
//     find the attached file by its name (recording-<recording id>.mp3)
//     before uploading it again. A rule with comment: none gets no note,
//     and its call record keeps Genesys's address;
//   - without it, the file is attached to the sync comment when that is
//     internal, and the RecordingURL data point is the uploaded file's
//     address; each leg's comment carries its own copy. A retry of a
//     comment whose first write's answer was lost may upload the file
//     again before it finds the comment written; Zendesk deletes that
//     unattached copy after an hour.
//
// A recording still being prepared (Genesys transcodes it on the first
// request) and a failure worth retrying are waited for within the late
// data wait (WithLateData); a recording that cannot be fetched or
// uploaded in that time, or at all (deleted; refused by Zendesk: too
// large, a file type the account does not allow; the ticket closed), is
// left out with a NoticeRecording, not fetched again by this process for
// that sync, and the rest of the sync is written. Uploads are not ticket
// writes: they wait out a 429's pause but not the sink's write pacing.
func WithRecordingUpload(o cti.RecordingOpener) Option {
	return func(c *config) error {
		if o == nil {
			return errors.New("syncmap: WithRecordingUpload(nil)")
		}
		c.recordings = o
		return nil
	}
}

// hosts reports whether the sink uploads p's recording.
func (s *Sink) hosts(p *plan) bool {
	return s.up != nil && p.data.RecordingURL != "" && p.call()
}

// recordingName is the file name of p's recording in Zendesk, which
// finds it again: recording-<the Genesys recording id>.mp3, as the
// opener names it.
func recordingName(recordingURL string) string {
	id := recordingURL
	if u, err := url.Parse(recordingURL); err == nil {
		id = path.Base(u.Path)
	}
	return cti.RecordingFileName(id)
}

// attached returns the address of the file named name attached to one of
// comments, or "".
func attached(comments []Comment, name string) string {
	for _, c := range comments {
		for _, a := range c.Attachments {
			if a.FileName == name && a.ContentURL != "" {
				return a.ContentURL
			}
		}
	}
	return ""
}

// upload opens p's recording and uploads it, returning the upload to
// attach.
func (s *Sink) upload(ctx context.Context, p *plan) (*Upload, error) {
	if err := s.lim.Paused(ctx); err != nil { // an upload is not a ticket write
		return nil, err
	}
	f, err := s.cfg.recordings.OpenRecording(ctx, p.data.RecordingURL)
	if err != nil {
		return nil, fmt.Errorf("syncmap: open recording: %w", err)
	}
	defer f.Body.Close()
	up, err := s.up.Upload(ctx, recordingName(p.data.RecordingURL), cmp.Or(f.ContentType, "audio/mpeg"), f.Size, f.Body)
	if err != nil {
		return nil, s.upstream(fmt.Errorf("syncmap: upload recording: %w", err))
	}
	if up.Token == "" || up.Attachment.ContentURL == "" {
		return nil, &cti.UpstreamError{Service: "zendesk", Op: "upload recording", Err: errors.New("the upload has no token or content_url")}
	}
	return up, nil
}

// recordingFailed decides what a failure to host p's recording does:
// within the late data wait, a recording being prepared or a failure
// worth retrying comes back later (a *cti.Deferred); otherwise the sync
// goes on without it (nil), reported once.
func (s *Sink) recordingFailed(p *plan, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if cti.IsRetryable(err) && p.waiting {
		after, ok := cti.RetryAfter(err)
		if !ok || after <= 0 {
			after = s.cfg.late.Poll
		}
		return cti.Later(min(max(after, time.Second), s.cfg.late.Poll), "recording not hosted yet: "+err.Error())
	}
	s.giveUp(p)
	msg := "the recording is not in Zendesk: " + err.Error()
	s.notice(Notice{Kind: NoticeRecording, Key: p.job.Key, ConversationID: p.job.ConversationID, Rule: p.rule.Name, Message: msg})
	s.cfg.log.Warn("syncing without the recording", "conversation", p.job.ConversationID, "rule", p.rule.Name, "error", err)
	return nil
}

// hostInComment uploads p's recording for the sync comment to attach, and
// points p's job (a copy) at the uploaded file. hosted is false when the
// recording is given up on.
func (s *Sink) hostInComment(ctx context.Context, p *plan) (hosted bool, err error) {
	if s.gaveUp(p) {
		return false, nil
	}
	up, err := s.upload(ctx, p)
	if err != nil {
		return false, s.recordingFailed(p, err)
	}
	job := *p.job
	c := *job.Conversation
	c.Links.RecordingURL = up.Attachment.ContentURL
	job.Conversation = &c
	p.job, p.data, p.uploads = &job, s.m.Data(&job), []string{up.Token}
	return true, nil
}

// callRecording returns the address of p's recording in Zendesk for
// its call record on ticket ticketID: the file attached there by an
// earlier try or another leg of the conversation, or a new upload with the
// internal note that attaches it (note), which the caller writes before
// it gives the call record the address. addr is "" when the recording is
// given up on, and err a *cti.Deferred when it is not ready yet.
func (s *Sink) callRecording(ctx context.Context, p *plan, ticketID int64, comments []Comment) (addr string, note *CommentInput, err error) {
	if s.gaveUp(p) {
		return "", nil, nil
	}
	if comments == nil { // a first try: another leg may have attached it
		if err := s.lim.Paused(ctx); err != nil {
			return "", nil, err
		}
		cs, err := s.zd.TicketComments(ctx, ticketID)
		if err != nil {
			return "", nil, s.recordingFailed(p, s.upstream(fmt.Errorf("syncmap: comments of ticket %d: %w", ticketID, err)))
		}
		comments = cs
	}
	if addr := attached(comments, recordingName(p.data.RecordingURL)); addr != "" {
		return addr, nil, nil
	}
	up, err := s.upload(ctx, p)
	if err != nil {
		return "", nil, s.recordingFailed(p, err)
	}
	body := "Recording of this call (Genesys Cloud conversation " + p.job.ConversationID + ")."
	return up.Attachment.ContentURL, &CommentInput{Body: body, AuthorID: p.author, Uploads: []string{up.Token}}, nil
}

func isDeferred(err error) bool {
	var d *cti.Deferred
	return errors.As(err, &d)
}

// gaveUp reports whether hosting p's recording failed for good earlier
// in this process (a retry of the whole sync, e.g. for late data, does
// not fetch it again).
func (s *Sink) gaveUp(p *plan) bool {
	s.noRecMu.Lock()
	defer s.noRecMu.Unlock()
	_, ok := s.noRecording[p.job.Key+" "+p.data.RecordingURL]
	return ok
}

// giveUp remembers that hosting p's recording failed for good, for at
// most maxGivenUp syncs (then they are forgotten together, and each is
// tried once more if its sync comes back).
func (s *Sink) giveUp(p *plan) {
	s.noRecMu.Lock()
	defer s.noRecMu.Unlock()
	if s.noRecording == nil || len(s.noRecording) >= maxGivenUp {
		s.noRecording = map[string]struct{}{}
	}
	s.noRecording[p.job.Key+" "+p.data.RecordingURL] = struct{}{}
}

const maxGivenUp = 10_000
