// Package genesys connects ctikit to Genesys Cloud: a cti.Source of live
// conversation snapshots for every media (calls, callbacks, chats, emails,
// messaging on SMS, WhatsApp, Facebook, Instagram, X, LINE, web and open
// messaging, and social expressions), and a cti.Enricher that adds names,
// links, content and summaries at the end of a conversation. It is built
// on the official SDK (platformclientv2 v157) with its own HTTP layer and
// its own websocket client; package genesystest is an in-process emulator
// of the same API for tests and demos.
//
// # Connecting
//
// A Config names the org's region (an AWS region name such as "eu-west-1"
// or its domain such as "mypurecloud.ie", see Regions) or explicit API and
// login URLs, and the OAuth client credentials (client credentials grant).
// ConfigFromEnv reads the variables Genesys' own CX-as-Code tools use:
//
//	GENESYSCLOUD_OAUTHCLIENT_ID, GENESYSCLOUD_OAUTHCLIENT_SECRET,
//	GENESYSCLOUD_REGION, GENESYSCLOUD_API_URL, GENESYSCLOUD_LOGIN_URL
//
// and names the variable to fix when one is missing or wrong.
//
//	cfg, err := genesys.ConfigFromEnv()
//	client, err := genesys.NewClient(cfg,
//		genesys.WithClientLogger(log),
//		genesys.WithHTTPTransport(metrics.Transport("genesys", nil)))
//	defer client.Close()
//
// Every SDK call of a Client goes through ctikit's transport, installed as
// the SDK's AbstractHttpClient on a per-call copy of the SDK configuration
// (so that it carries the caller's context): per-attempt timeouts,
// keep-alive connections, pacing under Genesys' limits (3,000 API calls and
// 300 token requests a minute), retries of 429 and 5xx that honour
// Retry-After and keep the status, and the bearer token, fetched on first
// use, refreshed ahead of expiry and again on a 401. None of the SDK's
// traps are used: no global configuration, no config-file watcher, no
// panicking token refresher, no go-retryablehttp stderr logging, no data
// race. Failures are *cti.UpstreamError (Status, RetryAfter, Retryable);
// rejected credentials an *AuthError. Neither the client secret nor a
// token ever appears in an error or a log line.
//
// # Live conversations
//
// A Source subscribes to the conversation topics of queues and users
// (v2.routing.queues.{id}.conversations, v2.users.{id}.conversations) and
// delivers a cti.Conversation for every update:
//
//	norm, err := match.NewNormalizer("US") // shared with match.NewZendesk
//	src, err := genesys.NewSource(client,
//		genesys.WithSubscribe(rules.Subscribe), // or WithQueues / WithUsers
//		genesys.WithPhoneNormalizer(norm.Normalize), // default: DefaultPhone
//		genesys.WithLogger(log))
//	eng, err := cti.NewEngine(src, rules, ...) // src is also the Enricher
//	err = eng.Run(ctx)
//
// Run keeps the notification channels alive by itself: 1,000 topics per
// channel, never more than the 20 channels an OAuth client may hold (one
// kept spare); a heartbeat watchdog replaces a silent socket; on
// v2.system.socket_closing, and ahead of a channel's expiry (or its
// token's), it opens the replacement before closing the old socket; a
// dropped socket is reopened with jittered backoff, on the same channel
// when it is still valid. After any reconnect that may have missed
// updates, and for the ids passed to Resume, it re-fetches the
// conversations it tracks (GET /api/v2/conversations/{id}), so an end or a
// wrap-up is never lost; after a gap it also looks up the conversations
// of its queues and users during the gap (POST
// /api/v2/analytics/conversations/details/query, at once and again after
// AnalyticsLag, see Client.ConversationsDuring) and fetches those it did
// not know, so one that started and ended meanwhile is synced too.
// Source.Ready reports whether every channel is
// connected, for a health check.
//
// Frames are decoded by a Decoder that reads only the fields ctikit uses,
// with a hand-written parser about twenty times faster than decoding into
// the SDK's model structs; the same update arriving on the queue topic and
// the user topic is recognised as an exact duplicate without decoding (a
// hash of the event body in a small recent set). Malformed frames,
// unknown topics and unsupported media (video, cobrowse) are logged and
// skipped. The customer's address comes from the ANI, the tel: or sip:
// URI, the callback number, the message's from/to address, the email
// address or the social handle; Customer.Phone is normalized by the
// pluggable Decoder.Phone. Each agent participant is a cti.AgentLeg with
// its state, disconnect type, wrap-up, after-call work and queue;
// transfers are derived from the participants.
//
// # Enrichment
//
// The Source's Enricher (NewEnricher; replace it with WithEnricher) fills
// agent names and emails (also before delivery, for the cti.Directory),
// queue and campaign names, the wrap-up code's name and category (its
// division), and once the conversation ended: times, wrap-up durations and
// transfers from the analytics conversation details, the recording link,
// the interaction link (https://apps.{region}/directory/#/engage/admin/interactions/{id}),
// email subject, body and reply, chat and messaging transcripts, and the
// Genesys AI summary, or one from any AI engine through a Summarizer.
// Lookups are cached and shared (singleflight); a transient failure
// returns a retryable error after filling what it could.
//
// # Recordings
//
// Client.OpenRecording (also on Source) implements cti.RecordingOpener:
// given a conversation's Links.RecordingURL, it asks Genesys for the
// recording as MP3 and streams the file from the pre-signed address
// Genesys answers with (without the OAuth token), for a sink that hosts
// the recording where agents can play it. A recording still being
// transcoded is a *cti.Deferred; a missing or deleted one wraps
// cti.ErrNotFound; a URL that is not on the client's API base wraps
// cti.ErrInvalid and sends nothing.
//
// # Concurrency
//
// Client, Source (apart from Run, called once), Enricher and Decoder are
// safe for concurrent use. Run owns every goroutine it starts (an errgroup
// per channel plus the re-fetcher) and returns only when all have ended.
//
// # Demo and tests
//
// genesystest.NewServer starts the emulator with seeded users, queues,
// wrap-up codes and a campaign; Server.Play plays random traffic of every
// media for a demo; Server.Start scripts a conversation step by step for a
// test, and its fault methods (DropSockets, SilenceSockets, SocketClosing,
// ExpireChannels, SendRaw, DuplicateFrames, HoldFrames, FailREST,
// RevokeTokens) exercise every recovery path:
//
//	srv := genesystest.NewServer()
//	defer srv.Close()
//	cfg := genesys.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, APIURL: srv.URL}
//	go srv.Play(ctx, genesystest.Traffic{})
package genesys
