// Package syncmap turns a finished conversation into Zendesk writes: the
// catalog of standard data points (Catalog, Data), the templates rules use
// to render them into ticket fields and comments (Parse, Funcs), and the
// field mapper that applies a rule's sync section.
//
// Templates are Go text/template over Data:
//
//	fields:
//	  "360000000001": "{{.CallDuration}}"
//	  "360000000002": "{{.Attr \"AccountNumber\"}}"
//	  "360000000003": "{{default \"n/a\" .WrapupName}}"
//
// Missing data renders empty, never "<nil>"; times render in the configured
// zone and layout (Format).
package syncmap
