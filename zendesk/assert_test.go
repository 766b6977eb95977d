package zendesk_test

import (
	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/zendesk"
)

// The interfaces other packages define and the server wires to a Client.
var (
	_ syncmap.Zendesk      = (*zendesk.Client)(nil)
	_ match.Searcher       = (*zendesk.Searcher)(nil)
	_ match.IdentityLister = (*zendesk.Searcher)(nil)
)

var _ cti.Directory = (*zendesk.Directory)(nil)
var _ cti.Popper = (*zendesk.Popper)(nil)
