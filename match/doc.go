// Package match identifies the customer behind a conversation in Zendesk:
// a cti.Matcher over a small Searcher interface, phone normalization, and
// composable middleware.
//
// # Walkthrough
//
// The reference server wires it like this:
//
//	client, _ := zendesk.New(cfg)                    // *zendesk.Client
//	norm, err := match.NewNormalizer("US")           // the account's home region
//	z, err := match.NewZendesk(client.Searcher(), match.WithNormalizer(norm))
//	matcher := match.Chain(
//		match.Log(logger),                           // what the engine asked (nil: silence)
//		match.Cache(match.CacheOptions{}),           // 1 min TTL, 10 s negative, one search per burst
//		match.Timeout(5*time.Second),                // bound the real searches only
//	)(match.First(crmMatcher, z))                    // optional: your own matcher first, Zendesk as fallback
//	eng, _ := cti.NewEngine(src, rules, cti.WithMatcher(matcher), ...)
//
// and gives the Genesys source the same normalizer for Customer.Phone
// (norm.Normalize has the func(string) string shape), so identities reach
// the matcher in E.164.
//
// # Phones
//
// Normalizer parses ANIs, tel: and sip: URIs, national and international
// formats with extensions (github.com/nyaruka/phonenumbers, a port of
// libphonenumber) into E.164. Zendesk matches phone numbers as exact
// strings, so the Zendesk matcher searches every format an account
// plausibly stores a number in (Phone.Formats: E.164, international,
// national, digits, ...) in one search: Zendesk ORs a repeated keyword,
// phone:"+14155551212" phone:"(415) 555-1212" .... SMS and WhatsApp senders
// are phone numbers too (digits without a plus are understood).
//
// # Other identities
//
// Emails are searched lower-cased; social handles (X, Facebook, messaging
// ids) as free text, verified against the users' identities when the
// Searcher is also an IdentityLister; participant attributes by their
// target: external_id, a user field (user_field.KEY), an organization's
// users (by the organization's external_id), a ticket id (the ticket
// itself). Values that cannot be a search (too long, quotes) are skipped
// with an error wrapping cti.ErrNoMatch, so the engine tries the rule's
// next identity; Searcher failures stay errors.
//
// # Results
//
// Every matcher here returns at most cti.MaxResults records, most recently
// updated first (Finish), with More set when Zendesk had more, and each
// user's unsolved tickets when Query.WithOpenTickets (OpenOnly).
//
// # Middleware
//
// A Middleware is func(cti.Matcher) cti.Matcher; Chain(a, b)(m) is
// a(b(m)), the first one outermost. Cache remembers results (and "no
// match", briefly) and collapses concurrent identical lookups into one,
// run by the first caller; First falls back from one matcher to the next; Timeout and
// Log do what they say.
//
// # Testing a matcher
//
// Package matchtest is a conformance suite for any cti.Matcher; this
// package runs it against the Zendesk matcher (over an in-memory directory
// and over HTTP against zendesk/zendesktest), the cache and First.
package match
