// Package match identifies the customer behind a conversation in Zendesk:
// a cti.Matcher over a small Searcher interface (implemented by
// *zendesk.Client), phone normalization, and composable middleware.
package match
