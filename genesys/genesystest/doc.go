// Package genesystest is an in-process Genesys Cloud for tests and demos,
// in the spirit of net/http/httptest: a real HTTP server on 127.0.0.1 that
// speaks the public API ctikit uses, with the JSON shapes of the official
// SDK's model structs (platformclientv2 v157) — without importing the SDK,
// so that packages needing only the emulator build fast.
//
// It serves the OAuth token endpoint (client credentials), users, queues,
// wrap-up codes (with their division as category), outbound campaigns,
// conversations (GET /api/v2/conversations/{id} and the per-media
// resources), email messages, chat and messaging transcripts, recording
// metadata and recordings (202 while transcoding, see
// WithRecordingTranscodes, then a pre-signed MP3 download that refuses an
// Authorization header and a bad signature, as S3 does; RecordingBytes is
// the file), AI summaries, analytics conversation details, and the
// notification service: channels (20 per client, the 21st evicting the
// oldest), subscriptions (1,000 topics per channel), and the websocket at
// each channel's connectUri with heartbeats and ping/pong. A channel lives
// its TTL and no longer than the token it was created with.
//
// # Scripting conversations
//
//	srv := genesystest.NewServer()
//	defer srv.Close()
//	c := srv.Start(genesystest.Spec{Media: genesystest.MediaMessage, MessageType: "whatsapp",
//		From: "+33612345678", Name: "Léa", Queue: genesystest.QueueSupport, Body: "Bonjour"})
//	leg := c.Alert(genesystest.AgentAlice) // a new agent participant, alerting
//	c.Connect(leg)
//	c.Transfer(leg, genesystest.QueueBilling) // or TransferTo(leg, userID)
//	bob := c.Alert(genesystest.AgentBob)
//	c.Connect(bob)
//	c.Disconnect(bob) // or End(): the customer leaves
//	c.Wrapup(leg, genesystest.CodeFollowUp, "notes")
//	c.Wrapup(bob, genesystest.CodeRefund, "refund issued", "vip")
//
// Each step publishes the whole conversation, as Genesys does, on the
// topic of every queue and agent involved.
//
// # Faults
//
// DropSockets, SilenceSockets (no heartbeats), SocketClosing (the
// maintenance warning, then the close), ExpireChannels, WithChannelTTL and
// WithTokenTTL (expiry), SendRaw (malformed frames, unknown topics),
// DuplicateFrames, HoldFrames/ReleaseFrames and Conversation.PublishStale
// (out-of-order updates), FailREST (429 with Retry-After, 5xx, any status
// on any path) and RevokeTokens (401s).
//
// # Demo traffic
//
// Server.Play runs random traffic of every media and channel for
// DemoCustomers (two share a phone) and UnknownCustomers until its context
// ends; the ids of the seeded directory are constants (AgentAlice,
// QueueSupport, CodeSale, CampaignRenewals, ...) so that a demo config can
// name them.
//
// A Server is safe for concurrent use; Close closes every socket and waits
// for every goroutine it started.
package genesystest
