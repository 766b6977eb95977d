// Package syncmap turns a finished conversation into Zendesk writes,
// exactly once: the catalog of standard data points (Catalog, Data), the
// templates rules use to render them into ticket fields and comments
// (Parse, Funcs), the default field mapper (Mapper), the Zendesk sink
// (Sink, over the Zendesk interface that *zendesk.Client implements) and
// the durable outbox and state store on local disk (Store).
//
// # Data points and templates
//
// Templates are Go text/template over Data:
//
//	fields:
//	  "360000000001": "{{.CallDuration}}"
//	  "360000000002": "{{.Attr \"AccountNumber\"}}"
//	  "360000000003": "{{default \"n/a\" .WrapupName}}"
//
// Missing data renders empty, never "<nil>"; times render in the configured
// zone and layout (Format, WithFormat). Catalog lists every data point with
// its type, description, default format and the media it applies to.
// Custom values computed from several others are added with WithComputed
// and read with {{.Value "Name"}}.
//
// # Wiring
//
// The reference server builds the pieces from its environment and rules:
//
//	store, err := syncmap.OpenStore(os.Getenv("CTI_STATE_DIR")) // fsync'd bbolt file, locked
//	...
//	defer store.Close()
//	sink, err := syncmap.NewSink(zendeskClient, &cfg.Rules,
//		syncmap.WithFormat(cfg.Time.Format()),
//		syncmap.WithTalkApp(appID),        // voice as Talk Partner Edition call records
//		syncmap.WithLogger(logger),
//		syncmap.WithNotify(func(n syncmap.Notice) { /* agent panel, metrics */ }))
//	...
//	engine, err := cti.NewEngine(source, &cfg.Rules, cti.WithStore(store), cti.WithSink(sink), ...)
//
// The engine puts each finished agent leg in the outbox together with the
// conversation's record that says so (Store.SaveConversationWithJobs, one
// transaction, on disk before it returns), and hands due jobs to the sink, several at once
// (SyncBatch) under a backlog; a job leaves the outbox only once Zendesk
// accepted it.
//
// # Which ticket
//
// A rule's sync.ticket chooses: popped — the ticket the agent saw or
// picked, or for a user their latest open ticket (else a new one);
// latest_open — the customer's most recently updated unsolved ticket (else
// a new one); new — a new ticket. A ticket deleted or closed by sync time
// falls back to a new ticket for the same requester, whose comment says
// so (NoticeTicketFallback).
//
// # Exactly once
//
// Every write to Zendesk carries the job's marker, MarkerTag(job.Key), in
// the same request: the comment, the custom fields and the marker tag go
// in one ticket update (additional_tags), a new ticket gets the marker as
// its external_id too, and a Talk Partner Edition call record has it as
// its external_id. Before writing, the sink looks for the marker (the
// ticket's tags; tickets by external id; the call behind the ticket's
// voice comments), so a job delivered again after a crash between
// Zendesk's acceptance and the outbox acknowledgment writes nothing twice.
// A call record is written before the ticket is marked, and found again
// through its voice comment when the crash came in between; when marking
// the ticket fails (a 429, a 5xx), the deferral carries a checkpoint
// naming the record, so the next delivery reads it directly. A rule with
// comment: none gives the record no voice comment: a crash (or a stop
// that cancels the sync) between the two writes makes it write the call
// record twice. After a restart, jobs left by the previous process wait
// WithBatchSettle so that an update_many job it submitted has finished in
// Zendesk before the check.
//
// # Zendesk limits
//
// Writes are paced (WithUpdateRate, 100 a minute by default: Zendesk's
// Update Ticket limit) and a 429 holds every request back for its
// Retry-After. When several syncs are due together (a backlog, or the
// engine's cti.WithBatchWait), comments to existing tickets go in
// update_many requests of up to 100 tickets, one update per ticket per
// request so that the comments of one ticket keep their order, and first
// tries that make new tickets go in create_many requests (three or more,
// when the Zendesk implementation is a ManyCreator). Comments
// and field values over DefaultMaxComment bytes are cut with
// TruncatedMarker. A ticket field Zendesk rejects (422) is reported once
// (log and NoticeFieldRejected, naming the field id) and the rest is
// written without it.
//
// # Late data
//
// Recordings, transcripts and AI summaries often come minutes after the
// end. A ticket comment waits for the late data points the rule's
// templates name (or LatePolicy.Points) up to LatePolicy.Wait, returning
// cti.Later meanwhile, then is written with what is known. A Talk Partner
// Edition call record is written at once and the same record is updated
// when the late data comes (its voice comment shows the record's current
// data): the deferral carries a checkpoint naming the record
// (cti.Deferred.Checkpoint, kept with the job by the engine), so the next
// delivery reads it directly, and leaves the late data out (NoticeLateData)
// if the ticket was deleted meanwhile instead of writing the call again.
//
// # Recordings
//
// Genesys Cloud's recording address (the RecordingURL data point) is an
// API resource behind OAuth: a Zendesk voice comment cannot play it.
// WithRecordingUpload makes the sink fetch each voice recording (through a
// cti.RecordingOpener, *genesys.Client) and upload it to Zendesk
// (Uploader): a Talk Partner Edition call record's recording_url is then
// the uploaded file, attached to an internal note on the ticket; without
// Talk the file is attached to the sync comment, and RecordingURL is its
// address.
//
// # Testing
//
// Package syncmaptest has Fake, an in-memory Zendesk with Zendesk's
// semantics and fault injection, and TestZendesk, the conformance suite
// for an implementation of the Zendesk interface.
package syncmap
