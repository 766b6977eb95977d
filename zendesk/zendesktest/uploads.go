package zendesktest

import (
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Upload defaults, as Zendesk's.
const (
	// DefaultUploadLimit is the largest file POST /api/v2/uploads takes
	// (50 MB); a bigger one is answered 413.
	DefaultUploadLimit = 50 << 20
	// DefaultUploadTTL is how long an upload token lives: an upload not
	// attached to a comment by then is deleted (its content_url 404s).
	DefaultUploadTTL = 60 * time.Minute
)

// WithUploadLimit sets the largest file an upload takes (default
// DefaultUploadLimit); past it the answer is 413.
func WithUploadLimit(bytes int64) Option { return func(o *options) { o.uploadLimit = bytes } }

// WithUploadTTL sets how long an unattached upload lives (default
// DefaultUploadTTL): set it short to see an upload expire.
func WithUploadTTL(d time.Duration) Option { return func(o *options) { o.uploadTTL = d } }

// Attachment is an uploaded file, as stored.
type Attachment struct {
	ID          int64
	FileName    string
	ContentType string
	// ContentURL serves the file without authentication:
	// URL + "/attachments/token/TOKEN/?name=FILE".
	ContentURL string
	Size       int64
	// Data is the file. It is shared with the emulator: do not modify it.
	Data []byte
}

// Upload is the result of POST /api/v2/uploads: a token and its files
// (more are added with ?token=).
type Upload struct {
	Token     string
	ExpiresAt time.Time
	// Attached is set once a comment carries the upload: it then no
	// longer expires.
	Attached    bool
	Attachments []Attachment
}

type upload struct {
	token    string
	expires  time.Time
	attached bool
	files    []*file
}

type file struct {
	Attachment
	content string // the content_url token
	up      *upload
}

func (u *upload) public() Upload {
	out := Upload{Token: u.token, ExpiresAt: u.expires, Attached: u.attached}
	for _, f := range u.files {
		out.Attachments = append(out.Attachments, f.Attachment)
	}
	return out
}

// live reports whether the upload's files are still served.
func (u *upload) live(now time.Time) bool { return u.attached || now.Before(u.expires) }

// Uploads returns the uploads that exist (attached or not expired yet), in
// the order they were made.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireUploads(time.Now())
	ups := make([]*upload, 0, len(s.uploads))
	for _, u := range s.uploads {
		ups = append(ups, u)
	}
	slices.SortFunc(ups, func(a, b *upload) int { return cmpInt(a.files[0].ID, b.files[0].ID) })
	out := make([]Upload, len(ups))
	for i, u := range ups {
		out[i] = u.public()
	}
	return out
}

// ExpireUploads makes every upload not attached yet expire now, as if its
// token's life had run out: its content_url then 404s and its token no
// longer attaches.
func (s *Server) ExpireUploads() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, u := range s.uploads {
		if !u.attached && u.expires.After(now) {
			u.expires = now
		}
	}
	s.uploadsDue = now
	s.expireUploads(now)
}

// expireUploads deletes the unattached uploads whose token expired.
// Called with s.mu held; cheap until the next expiry is due.
func (s *Server) expireUploads(now time.Time) {
	if s.uploadsDue.IsZero() || now.Before(s.uploadsDue) {
		return
	}
	s.uploadsDue = time.Time{}
	for tok, u := range s.uploads {
		if u.live(now) {
			if !u.attached && (s.uploadsDue.IsZero() || u.expires.Before(s.uploadsDue)) {
				s.uploadsDue = u.expires
			}
			continue
		}
		delete(s.uploads, tok)
		for _, f := range u.files {
			delete(s.files, f.content)
			delete(s.attachments, f.ID)
		}
	}
}

const tokenChars = "abcdefghijklmnopqrstuvwxyz0123456789"

// token returns a random token of n characters not in use by taken.
func token(n int, taken func(string) bool) string {
	for {
		b := make([]byte, n)
		for i := range b {
			b[i] = tokenChars[rand.N(len(tokenChars))]
		}
		if t := string(b); !taken(t) {
			return t
		}
	}
}

// upload stores a file (POST /api/v2/uploads?filename=NAME[&token=T]).
func (c *call) upload() {
	s := c.s
	q := c.r.URL.Query()
	name := q.Get("filename")
	if strings.TrimSpace(name) == "" {
		writeError(c.w, http.StatusBadRequest, "InvalidValue", "filename is required")
		return
	}
	if int64(len(c.body)) > s.opt.uploadLimit {
		writeError(c.w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			"File is too large: the maximum file size is "+strconv.FormatInt(s.opt.uploadLimit, 10)+" bytes")
		return
	}
	ctype := contentType(c.r.Header.Get("Content-Type"), name)
	now := time.Now()
	var u *upload
	if tok := q.Get("token"); tok != "" {
		if u = s.uploads[tok]; u == nil || !u.live(now) || u.attached {
			recordInvalid("token", "Token: "+tok+" is invalid or has expired", "InvalidValue").write(c.w)
			return
		}
	} else {
		u = &upload{token: token(15, func(t string) bool { return s.uploads[t] != nil }), expires: now.Add(s.opt.uploadTTL)}
		s.uploads[u.token] = u
		if s.uploadsDue.IsZero() || u.expires.Before(s.uploadsDue) {
			s.uploadsDue = u.expires
		}
	}
	f := &file{Attachment: Attachment{ID: s.newID(), FileName: name, ContentType: ctype, Size: int64(len(c.body)), Data: c.body}, up: u}
	f.content = token(25, func(t string) bool { return s.files[t] != nil })
	f.ContentURL = s.URL + "/attachments/token/" + f.content + "/?" + url.Values{"name": {name}}.Encode()
	s.files[f.content] = f
	s.attachments[f.ID] = f
	u.files = append(u.files, f)
	atts := make([]map[string]any, len(u.files))
	for i, x := range u.files {
		atts[i] = s.attachmentJSON(x.Attachment)
	}
	writeJSON(c.w, http.StatusCreated, map[string]any{"upload": map[string]any{
		"token": u.token, "expires_at": ts(u.expires), "attachments": atts, "attachment": s.attachmentJSON(f.Attachment),
	}})
}

// contentType is the upload's media type: the Content-Type header without
// parameters, else a guess from the file name.
func contentType(header, name string) string {
	if mt, _, err := mime.ParseMediaType(header); err == nil && mt != "" {
		return mt
	}
	if mt, _, err := mime.ParseMediaType(mime.TypeByExtension(path.Ext(name))); err == nil && mt != "" {
		return mt
	}
	return "application/octet-stream"
}

// showAttachment answers GET /api/v2/attachments/{id}.
func (c *call) showAttachment(id int64) {
	f := c.s.attachments[id]
	if f == nil || !f.up.live(time.Now()) {
		c.notFound()
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"attachment": c.s.attachmentJSON(f.Attachment)})
}

// content serves a file at its content_url (no authentication, as on an
// account without private attachments). Called with s.mu held.
func (s *Server) content(w http.ResponseWriter, r *http.Request) {
	tok, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/attachments/token/"), "/")
	f := s.files[tok]
	if f == nil || !f.up.live(time.Now()) {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", f.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(f.Data)
	}
}

func (s *Server) attachmentJSON(a Attachment) map[string]any {
	return map[string]any{
		"url": s.apiURL("attachments", a.ID), "id": a.ID, "file_name": a.FileName,
		"content_url": a.ContentURL, "mapped_content_url": a.ContentURL, "content_type": a.ContentType,
		"size": a.Size, "width": nil, "height": nil, "inline": false, "deleted": false,
		"malware_access_override": false, "malware_scan_result": "malware_not_found", "thumbnails": []any{},
	}
}

// checkUploads validates the upload tokens of a comment: each must be a
// live upload not attached yet. Called with s.mu held.
func (s *Server) checkUploads(tokens []string, now time.Time) *apiErr {
	for _, tok := range tokens {
		if u := s.uploads[tok]; u == nil || !u.live(now) || u.attached {
			return recordInvalid("uploads", "Uploads: token "+tok+" is invalid, expired or already attached", "InvalidValue")
		}
	}
	return nil
}

// attach marks the uploads attached and returns their files, for a
// comment. The tokens were checked. Called with s.mu held.
func (s *Server) attach(tokens []string) []Attachment {
	var out []Attachment
	for _, tok := range tokens {
		u := s.uploads[tok]
		if u == nil || u.attached {
			continue // named twice
		}
		u.attached = true
		for _, f := range u.files {
			out = append(out, f.Attachment)
		}
	}
	return out
}
