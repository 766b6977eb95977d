package genesys

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
	"golang.org/x/sync/singleflight"
)

// AuthError is a rejection of the OAuth client credentials by the login
// service (400/401/403 on the token request): wrong id or secret, a
// disabled client, a wrong region. It is permanent: retrying will not help.
// It never contains the secret or a token.
type AuthError struct {
	Status      int
	Code        string // the OAuth "error" field, e.g. "invalid_client"
	Description string // the OAuth "error_description" field
}

func (e *AuthError) Error() string {
	s := fmt.Sprintf("genesys: OAuth client credentials rejected (status %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	s += ")"
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s + "; check " + EnvClientID + ", " + EnvClientSecret + " and the region"
}

// Retryable is false: bad credentials stay bad.
func (e *AuthError) Retryable() bool { return false }

// Is makes errors.Is(err, cti.ErrInvalid) true.
func (e *AuthError) Is(target error) bool { return target == cti.ErrInvalid }

// tokenResponse is the OAuth token endpoint's answer.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	Error            string `json:"error"`
	Description      string `json:"description"`
	ErrorDescription string `json:"error_description"`
}

// tokenSource holds the client-credentials access token, fetches it on
// first use, refreshes it ahead of expiry, and again when the API answers
// 401. Concurrent callers share one fetch. Safe for concurrent use.
type tokenSource struct {
	t       *transport // for pacing-free sending (its hc and retry policy)
	login   *url.URL
	id      string
	secret  string
	pace    *pacer
	margin  time.Duration // refresh this long before expiry (at most)
	log     *slog.Logger
	sf      singleflight.Group
	mu      sync.Mutex
	tok     string
	exp     time.Time
	life    time.Duration
	fetches int
}

// token returns a valid access token and its expiry.
func (s *tokenSource) token(ctx context.Context) (string, time.Time, error) {
	s.mu.Lock()
	tok, exp, early := s.tok, s.exp, min(s.margin, s.life/2)
	s.mu.Unlock()
	if tok != "" && time.Now().Before(exp.Add(-early)) {
		return tok, exp, nil
	}
	ch := s.sf.DoChan("token", func() (any, error) {
		// A fresh context: one caller giving up must not fail the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*s.t.timeout)
		defer cancel()
		return nil, s.fetch(fctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", time.Time{}, r.Err
		}
	case <-ctx.Done():
		return "", time.Time{}, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == "" {
		return "", time.Time{}, errors.New("genesys: no access token")
	}
	return s.tok, s.exp, nil
}

// expiry returns the current token's expiry (zero when none).
func (s *tokenSource) expiry() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exp
}

// invalidate drops tok if it is still the current token.
func (s *tokenSource) invalidate(tok string) {
	s.mu.Lock()
	if s.tok == tok {
		s.tok, s.exp = "", time.Time{}
	}
	s.mu.Unlock()
}

// invalidateAll drops the current token whatever it is.
func (s *tokenSource) invalidateAll() {
	s.mu.Lock()
	s.tok, s.exp = "", time.Time{}
	s.mu.Unlock()
}

// ensure makes sure the current token has at least minLife ahead (at most
// half its lifetime), fetching a new one if not: a notification channel
// lives no longer than the token it is created with.
func (s *tokenSource) ensure(ctx context.Context, minLife time.Duration) error {
	tok, exp, err := s.token(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	need := min(minLife, s.life/2)
	s.mu.Unlock()
	if time.Until(exp) >= need {
		return nil
	}
	s.invalidate(tok)
	_, _, err = s.token(ctx)
	return err
}

func (s *tokenSource) fetch(ctx context.Context) error {
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	hdr.Set("Accept", "application/json")
	req := *s.login
	req.User = nil
	for attempt := 0; ; attempt++ {
		if err := s.pace.wait(ctx); err != nil {
			return err
		}
		h := hdr.Clone()
		h.Set("Authorization", "Basic "+basicAuth(s.id, s.secret))
		resp, err := s.t.once(ctx, http.MethodPost, &req, h, []byte(form), "")
		if err != nil {
			if attempt < s.t.retry.MaxRetries && ctx.Err() == nil {
				if err := sleep(ctx, s.t.retry.Backoff(attempt+1)); err != nil {
					return err
				}
				continue
			}
			return &cti.UpstreamError{Service: "genesys", Op: "get OAuth token", Temporary: true, Err: err}
		}
		var tr tokenResponse
		_ = json.NewDecoder(resp.Body).Decode(&tr)
		switch st := resp.StatusCode; {
		case st == http.StatusOK:
			if tr.AccessToken == "" {
				return &cti.UpstreamError{Service: "genesys", Op: "get OAuth token", Status: st, Err: errors.New("response has no access_token")}
			}
			life := time.Duration(tr.ExpiresIn) * time.Second
			if life <= 0 {
				life = time.Hour
			}
			s.mu.Lock()
			s.tok, s.exp, s.life = tr.AccessToken, time.Now().Add(life), life
			s.fetches++
			s.mu.Unlock()
			s.log.LogAttrs(ctx, slog.LevelDebug, "genesys: got an access token", slog.Duration("expiresIn", life))
			return nil
		case st == http.StatusBadRequest || st == http.StatusUnauthorized || st == http.StatusForbidden:
			desc := tr.ErrorDescription
			if desc == "" {
				desc = tr.Description
			}
			return &AuthError{Status: st, Code: tr.Error, Description: scrub(desc, s.secret)}
		case st == http.StatusTooManyRequests || st >= 500:
			ra := retryAfter(resp.Header)
			if attempt < s.t.retry.MaxRetries && ra <= s.t.retry.MaxWait {
				if err := sleep(ctx, max(ra, s.t.retry.Backoff(attempt+1))); err != nil {
					return err
				}
				continue
			}
			return &cti.UpstreamError{Service: "genesys", Op: "get OAuth token", Status: st, RetryAfter: ra, Err: errors.New(http.StatusText(st))}
		default:
			return &cti.UpstreamError{Service: "genesys", Op: "get OAuth token", Status: st, Err: errors.New(http.StatusText(st))}
		}
	}
}

// scrub removes a secret from a server-provided message, should a server
// ever echo it.
func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

func basicAuth(id, secret string) string {
	// As the Genesys SDKs send it: base64(id:secret), no form-encoding.
	return base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
}
