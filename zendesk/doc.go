// Package zendesk is ctikit's Zendesk adapter, built on go-zendesk
// (github.com/nukosuke/go-zendesk v0.18.0) and a Transport of our own.
//
// # Client
//
// New builds a Client from a Config (subdomain or URL, and an API token or
// an OAuth token); the reference server uses NewFromEnv, which reads
// ZENDESK_URL, ZENDESK_EMAIL and ZENDESK_API_TOKEN (or ZENDESK_OAUTH_TOKEN)
// and names every missing variable:
//
//	c, err := zendesk.NewFromEnv(zendesk.WithLogger(log), zendesk.WithAppID(appID))
//
// The Client implements syncmap.Zendesk (tickets, update_many with job
// polling, comments with their attachments, Talk Partner Edition call
// records), syncmap.ManyCreator (create_many) and syncmap.Uploader
// (Upload Files, whose token a comment's uploads attaches); c.Searcher() is
// its match.Searcher and match.IdentityLister. NewDirectory builds the
// cti.Directory (Genesys agent → Zendesk agent by email, with the rules
// file's agents: overrides) and NewPopper the cti.Popper (Talk Partner
// Edition screen pops, creating users and tickets on no match):
//
//	matcher, _ := match.NewZendesk(c.Searcher(), match.WithRegion("US"))
//	dir, _ := zendesk.NewDirectory(c, cfg.Agents)
//	pop, _ := zendesk.NewPopper(c)
//
// Beyond those interfaces the Client offers the calls they are made of:
// Search (unified search, URL-encoded so a "+" stays a plus), FindUsers,
// User, CreateUser (with phone, email and social identities), Identities,
// RequestedTickets / UnsolvedTickets (most recently updated first, read
// from the requested-tickets list, not the lagging search index), Ticket,
// CreateTicket, UpdateTicket, UpdateMany, CreateMany, Upload, DisplayUser,
// DisplayTicket, CreateVoiceTicket, CreateCall, UpdateCall. API returns the
// go-zendesk client for anything else.
//
// # Transport
//
// go-zendesk has no rate limiting or retries and shares one header map
// between clients, so credentials, pacing and retries live in Transport,
// the http.RoundTripper under every call:
//
//   - the Authorization header (Basic "email/token:TOKEN" or Bearer) is
//     added per request; the credentials never appear in logs or errors;
//   - a 429 pauses every request of the client for its Retry-After (a 429
//     on a ticket update pauses ticket updates only) and is retried;
//   - 5xx, timeouts and dropped connections are retried with backoff when
//     repeating cannot write twice (reads, PUTs, screen pops, uploads, and
//     ticket creation carrying an Idempotency-Key, which CreateTicket and
//     the popper send); a plain POST is never repeated blindly;
//   - a request whose body cannot be rewound (no GetBody: an upload
//     streamed once) is never repeated at all: its 429 or 5xx comes back
//     to the caller as a retryable error;
//   - X-Rate-Limit / X-Rate-Limit-Remaining and ratelimit-* headers pace
//     requests once a fifth of the window's budget is left, so the client
//     slows down before Zendesk says 429;
//   - ticket updates spend a separate budget (100 a minute by default,
//     Zendesk's Update Ticket limit);
//   - each attempt has a timeout, and a wait longer than MaxWait fails at
//     once with a retryable error carrying RetryAfter instead of holding
//     the caller.
//
// The policies are function fields with exported defaults (DefaultPace,
// DefaultCheckRetry, DefaultBackoff, DefaultIsTicketUpdate), replaceable
// with WithPolicies.
//
// # Errors
//
// Failures are *cti.UpstreamError (Service "zendesk", Op, Status,
// RetryAfter; Retryable for 429, 5xx and transport failures) around an
// *APIError with Zendesk's error code and description. A 404 matches
// cti.ErrNotFound; a 422 naming ticket fields is a *syncmap.FieldError;
// invalid arguments match cti.ErrInvalid; an unknown agent
// cti.ErrUnknownAgent.
//
// # Testing
//
// Package zendesktest is an emulator of the Zendesk API speaking the same
// wire formats, with rate limits, faults and search index lag; this
// package's tests run the real go-zendesk client against it over HTTP.
package zendesk
