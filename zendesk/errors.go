package zendesk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	zd "github.com/nukosuke/go-zendesk/zendesk"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
)

// APIError is an error response from Zendesk: the status and what the body
// said (the "error" code, description and details). It matches
// cti.ErrNotFound for a 404. Clients see it wrapped in a *cti.UpstreamError.
type APIError struct {
	Status int
	// Code is Zendesk's error code ("RecordNotFound", "RecordInvalid",
	// "InvalidEndpoint", ...), empty when the body had none.
	Code string
	// Description is Zendesk's message, including the details.
	Description string
	// FieldIDs are the ticket fields a 422 names (details.base[].ticket_field_id
	// or field_key).
	FieldIDs []int64
	// Taken are the fields a 422 says another record already holds
	// (details.<field>[].error "DuplicateValue"), e.g. "email".
	Taken []string
}

func (e *APIError) Error() string {
	s := strings.TrimSpace(e.Code + ": " + e.Description)
	s = strings.TrimPrefix(strings.TrimSuffix(s, ":"), ": ")
	if s == "" {
		s = http.StatusText(e.Status)
	}
	return s
}

// Is makes a 404 match cti.ErrNotFound.
func (e *APIError) Is(target error) bool {
	return target == cti.ErrNotFound && e.Status == http.StatusNotFound
}

// parseAPIError reads the shapes Zendesk error bodies come in:
// {"error":"Code","description":"...","details":{...}},
// {"error":{"title":"...","message":"..."}}, {"errors":[{"code","title","detail"}]}
// and plain text.
func parseAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var v struct {
		Error       json.RawMessage            `json:"error"`
		Description string                     `json:"description"`
		Details     map[string]json.RawMessage `json:"details"`
		Errors      []struct {
			Code   string `json:"code"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &v) != nil {
		e.Description = truncate(strings.TrimSpace(string(body)), 300)
		return e
	}
	var code string
	if json.Unmarshal(v.Error, &code) == nil {
		e.Code = code
	} else {
		var obj struct{ Title, Message string }
		if json.Unmarshal(v.Error, &obj) == nil {
			e.Code, v.Description = obj.Title, cmpOr(v.Description, obj.Message)
		}
	}
	parts := []string{}
	if v.Description != "" {
		parts = append(parts, v.Description)
	}
	for _, er := range v.Errors {
		if e.Code == "" {
			e.Code = er.Code
		}
		parts = append(parts, strings.TrimSpace(er.Title+" "+er.Detail))
	}
	keys := make([]string, 0, len(v.Details))
	for k := range v.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var items []map[string]any
		if json.Unmarshal(v.Details[k], &items) != nil {
			continue
		}
		for _, it := range items {
			if d, ok := it["description"].(string); ok && d != "" {
				parts = append(parts, d)
			}
			if it["error"] == "DuplicateValue" && !slices.Contains(e.Taken, k) {
				e.Taken = append(e.Taken, k)
			}
			for _, key := range []string{"ticket_field_id", "field_key"} {
				if id, ok := asInt64(it[key]); ok && !slices.Contains(e.FieldIDs, id) {
					e.FieldIDs = append(e.FieldIDs, id)
				}
			}
		}
	}
	e.Description = truncate(strings.Join(parts, "; "), 500)
	return e
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		return int64(x), x > 0
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil && n > 0
	case json.Number:
		n, err := x.Int64()
		return n, err == nil && n > 0
	}
	return 0, false
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// fail turns any failure of a Zendesk call into the error callers get: a
// *cti.UpstreamError (Service "zendesk", Op, Status, RetryAfter) around an
// *APIError for an error response; a 422 naming ticket fields is further
// wrapped in a *syncmap.FieldError. Secrets are scrubbed from messages.
func (c *Client) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	err = c.classify(op, err)
	if c.log != nil {
		level := slog.LevelWarn
		var ue *cti.UpstreamError
		if !errors.As(err, &ue) || (ue.Status >= 400 && ue.Status < 500 && ue.Status != http.StatusTooManyRequests) {
			level = slog.LevelDebug // expected outcomes: not found, invalid, cancelled
		}
		c.log.Log(context.Background(), level, "zendesk: call failed", slog.String("op", op), slog.String("error", err.Error()))
	}
	return err
}

func (c *Client) classify(op string, err error) error {
	var ue *cti.UpstreamError
	if errors.As(err, &ue) { // from the transport (rate limited locally)
		cp := *ue
		cp.Op = op
		return &cp
	}
	var ze zd.Error
	if errors.As(err, &ze) {
		body, _ := io.ReadAll(ze.Body())
		return c.statusError(op, ze.Status(), ze.Headers(), body)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("zendesk %s: %w", op, err)
	}
	var se *syntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("zendesk %s: %w", op, err)
	}
	return &cti.UpstreamError{
		Service: "zendesk", Op: op, Temporary: cti.IsRetryable(err),
		Err: &scrubbed{msg: c.scrub(err.Error()), err: err},
	}
}

// statusError builds the error for a non-2xx response.
func (c *Client) statusError(op string, status int, h http.Header, body []byte) error {
	ae := parseAPIError(status, body)
	ae.Description = c.scrub(ae.Description)
	ae.Code = c.scrub(ae.Code)
	ue := &cti.UpstreamError{Service: "zendesk", Op: op, Status: status, Err: ae}
	if h != nil {
		if d, ok := ParseRetryAfter(h.Get("Retry-After"), time.Now()); ok {
			ue.RetryAfter = d
		}
	}
	if status == http.StatusUnprocessableEntity && len(ae.FieldIDs) > 0 {
		return &syncmap.FieldError{FieldIDs: ae.FieldIDs, Message: ae.Description, Err: ue}
	}
	return ue
}

// scrub removes the credentials from s.
func (c *Client) scrub(s string) string {
	for _, sec := range c.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// scrubbed is an error whose message was cleaned of credentials; it still
// unwraps to the original for errors.Is/As (timeouts, net errors).
type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }

// syntaxError is a response body that could not be decoded.
type syntaxError struct {
	what string
	err  error
}

func (e *syntaxError) Error() string { return "decoding " + e.what + ": " + e.err.Error() }
func (e *syntaxError) Unwrap() error { return e.err }

var fieldInTextRE = regexp.MustCompile(`(?i)field\D{0,24}?(\d{2,19})`)

// fieldIDsInText finds ticket field ids in a job result's details text,
// e.g. "Field 360000000001 is invalid".
func fieldIDsInText(s string) []int64 {
	var ids []int64
	for _, m := range fieldInTextRE.FindAllStringSubmatch(s, -1) {
		if id, err := strconv.ParseInt(m[1], 10, 64); err == nil && id > 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}
