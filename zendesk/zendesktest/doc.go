// Package zendesktest is an in-process emulator of the Zendesk API
// endpoints ctikit uses, in the spirit of net/http/httptest: tests and the
// reference server's demo mode run the real go-zendesk client and package
// zendesk against it over HTTP.
//
// It speaks the public wire formats: Basic "email/token:TOKEN" and Bearer
// authentication; unified search (/api/v2/search, /search/count) and
// /api/v2/users/search with the query syntax subset ctikit uses
// (type:user|ticket|organization, phone:, email:, external_id:, role:,
// name:, organization:, tags:, status<solved and the other comparisons,
// requester_id:, custom user fields as KEY:value, quoted free text;
// repeating a keyword ORs its values, different keywords AND); users
// (create with identities, create_or_update by email or external id,
// show, list by role, identities); organizations;
// tickets (create with an Idempotency-Key, show, show_many, list by
// external_id, update with comment, custom_fields, additional_tags and
// status, update_many returning a job status that completes, comments);
// users' requested tickets; uploads (POST /api/v2/uploads?filename=...
// with the raw file as the body, 413 past WithUploadLimit, 50 MB by
// default; the token attaches the files to a comment of a ticket create
// or update, update_many or create_many through comment.uploads, and the
// comments list them under "attachments"; an unknown, expired or already
// attached token is a 422 RecordInvalid; content_url serves the file
// without authentication, until an unattached upload expires after
// WithUploadTTL, 60 minutes by default); Talk Partner Edition display,
// voice tickets and the standard call object (POST/PATCH/GET
// /api/v2/calls with the voice comment section). Phone numbers match as
// exact strings, as Zendesk does: "+1 (415)-555-1212" does not find
// "+14155551212".
//
// Like Zendesk, it sends X-Rate-Limit / X-Rate-Limit-Remaining on every
// response (and ratelimit-* on GETs) and answers 429 with Retry-After past
// the account budget or the Update Ticket budget; its search index lags
// (WithIndexLag) so a user created a moment ago is not found yet.
//
// For tests it records every request (method, path, query, body,
// authenticated principal, status) and every screen pop per agent, injects
// latency (WithLatency) and faults (InjectFault: 5xx bursts, 429 storms,
// stalls for timeouts), rejects chosen custom fields with a 422
// (RejectField), deletes tickets (DeleteTicket), and lists the uploads
// with their bytes (Uploads). Seed it with Seed or DemoSeed:
//
//	srv := zendesktest.NewServer(zendesktest.WithIndexLag(2 * time.Second))
//	defer srv.Close()
//	srv.Seed(zendesktest.DemoSeed())
//	c, _ := zendesk.New(zendesk.Config{URL: srv.URL,
//		Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken})
//
// A Server is safe for concurrent use. It starts no goroutines of its own
// besides the listener (jobs complete lazily, on the next request), and
// Close ends stalled requests at once.
package zendesktest
