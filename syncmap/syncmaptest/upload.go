package syncmaptest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
)

// Upload defaults of Fake, as Zendesk's.
const (
	// DefaultUploadLimit is the largest file Fake takes (50 MB); a bigger
	// one is a 413.
	DefaultUploadLimit = 50 << 20
	// DefaultUploadTTL is how long an unattached upload lives in Fake.
	DefaultUploadTTL = 60 * time.Minute
)

// FakeContentBase is where Fake says its attachments are served
// (content_url); nothing listens there: read them with Content.
const FakeContentBase = "https://fake.zendesk.invalid"

// SetUploadLimit sets the largest file Upload takes (default
// DefaultUploadLimit).
func (f *Fake) SetUploadLimit(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploadLimit = n
}

// SetUploadTTL sets how long an unattached upload lives (default
// DefaultUploadTTL), for uploads made from now on.
func (f *Fake) SetUploadTTL(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploadTTL = d
}

// ExpireUploads makes every upload not attached yet expire now: its
// content is gone and its token no longer attaches.
func (f *Fake) ExpireUploads() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for tok, u := range f.uploads {
		if !u.attached {
			f.dropUpload(tok, u)
		}
	}
}

// Uploads returns the uploads that exist (attached, or not expired yet),
// by attachment id.
func (f *Fake) Uploads() []syncmap.Upload {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []syncmap.Upload
	for _, tok := range slices.Sorted(maps.Keys(f.uploads)) {
		if u := f.uploads[tok]; f.uploadLive(u) {
			out = append(out, u.u)
		}
	}
	slices.SortFunc(out, func(a, b syncmap.Upload) int { return cmp.Compare(a.Attachment.ID, b.Attachment.ID) })
	return out
}

// Content returns the file an attachment's content_url serves and its
// content type; ok is false when there is none (unknown, or an upload
// that expired without being attached). It stands for an HTTP GET of the
// content_url.
func (f *Fake) Content(contentURL string) (data []byte, contentType string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.content[contentURL]
	if u == nil || !f.uploadLive(u) {
		return nil, "", false
	}
	return slices.Clone(u.data), u.u.Attachment.ContentType, true
}

// Fetch is Content as an error-returning call, the shape of Env.Fetch: a
// missing file is an error wrapping cti.ErrNotFound.
func (f *Fake) Fetch(ctx context.Context, contentURL string) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	b, ct, ok := f.Content(contentURL)
	if !ok {
		return nil, "", fmt.Errorf("syncmaptest: %s: %w", contentURL, cti.ErrNotFound)
	}
	return b, ct, nil
}

// uploadLive reports whether an upload still exists; f.mu is held.
func (f *Fake) uploadLive(u *fakeUpload) bool {
	if u.attached || f.now().Before(u.u.ExpiresAt) {
		return true
	}
	f.dropUpload(u.u.Token, u)
	return false
}

func (f *Fake) dropUpload(tok string, u *fakeUpload) {
	delete(f.uploads, tok)
	delete(f.content, u.u.Attachment.ContentURL)
}

// attach marks the (checked) uploads attached and returns their files for
// a comment; f.mu is held.
func (f *Fake) attach(tokens []string) []syncmap.Attachment {
	var out []syncmap.Attachment
	for _, tok := range tokens {
		if u := f.uploads[tok]; u != nil && !u.attached {
			u.attached = true
			out = append(out, u.u.Attachment)
		}
	}
	return out
}

// Upload implements syncmap.Uploader like Zendesk: the token attaches the
// file through CommentInput.Uploads of a create or update (once; an
// unknown, expired or attached token is a 422), the comment then lists it
// in Attachments, and Content serves it. A file over the limit is a 413
// (also cti.ErrInvalid, as the client refuses it unsent); a bad name is
// cti.ErrInvalid. With size >= 0 the body must hold exactly size bytes.
// Hook and Storm fail it like the other operations (OpUpload).
func (f *Fake) Upload(ctx context.Context, name, contentType string, size int64, body io.Reader) (*syncmap.Upload, error) {
	if strings.TrimSpace(name) == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("syncmaptest: upload: %w: file name %q", cti.ErrInvalid, name)
	}
	if body == nil {
		return nil, fmt.Errorf("syncmaptest: upload: %w: nil body", cti.ErrInvalid)
	}
	f.mu.Lock()
	limit := f.uploadLimit
	f.mu.Unlock()
	tooLarge := func() error {
		return upstream(OpUpload, 413, fmt.Errorf("%w: %s is larger than %d bytes", cti.ErrInvalid, name, limit))
	}
	if size > limit {
		return nil, tooLarge()
	}
	if err := f.begin(ctx, OpUpload); err != nil {
		return nil, err
	}
	var data []byte
	var err error
	if size >= 0 {
		data = make([]byte, size)
		if _, err = io.ReadFull(body, data); err == nil {
			var one [1]byte
			if n, _ := body.Read(one[:]); n > 0 {
				err = errors.New("the body is longer than its size")
			}
		}
	} else if data, err = io.ReadAll(io.LimitReader(body, limit+1)); err == nil && int64(len(data)) > limit {
		return nil, tooLarge()
	}
	if err != nil {
		return nil, fmt.Errorf("syncmaptest: upload %s: %w", name, err)
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		contentType = mt
	} else if mt, _, err := mime.ParseMediaType(mime.TypeByExtension(path.Ext(name))); err == nil {
		contentType = mt
	} else {
		contentType = "application/octet-stream"
	}
	f.mu.Lock()
	id := f.id()
	tok := fmt.Sprintf("fake%011d", id)
	u := &fakeUpload{data: data, u: syncmap.Upload{Token: tok, ExpiresAt: f.now().Add(f.uploadTTL),
		Attachment: syncmap.Attachment{ID: id, FileName: name, ContentType: contentType, Size: int64(len(data)),
			ContentURL: FakeContentBase + "/attachments/token/" + tok + "/?" + url.Values{"name": {name}}.Encode()}}}
	f.uploads[tok] = u
	f.content[u.u.Attachment.ContentURL] = u
	out := u.u
	f.mu.Unlock()
	return &out, f.end(OpUpload)
}
