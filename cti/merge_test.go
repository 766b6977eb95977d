package cti_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/cxplay/ctikit/cti"
)

// TestMergeTransferDestination: one transfer (the same agent leaving at
// the same time) stays one transfer when two snapshots name different
// destinations for it: the newer snapshot's wins, an older one's is
// ignored, and a destination both name keeps the names either has.
func TestMergeTransferDestination(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)
	snap := func(legs int, tr cti.Transfer) *cti.Conversation {
		c := &cti.Conversation{ID: "c1", Transfers: []cti.Transfer{tr}}
		for i := range legs {
			c.Agents = append(c.Agents, cti.AgentLeg{ID: string(rune('a' + i)), UserID: "u", State: cti.LegConnected})
		}
		return c
	}
	alice := cti.Ref{ID: "u-alice"}
	toCarol := cti.Transfer{At: at, FromUser: alice, ToUser: cti.Ref{ID: "u-carol"}, Kind: cti.TransferConsult}
	toBilling := cti.Transfer{At: at, FromUser: alice, ToQueue: cti.Ref{ID: "q-billing", Name: "Billing"}, Kind: cti.TransferConsult}

	c := snap(1, toCarol)
	c.Merge(snap(2, toBilling)) // newer
	assert.Equal(t, []cti.Transfer{toBilling}, c.Transfers, "the newer snapshot's destination")

	c = snap(2, toBilling)
	c.Merge(snap(1, toCarol)) // older
	assert.Equal(t, []cti.Transfer{toBilling}, c.Transfers, "an older snapshot's destination is ignored")

	c = snap(1, cti.Transfer{At: at, FromUser: alice, ToQueue: cti.Ref{ID: "q-billing"}, Kind: cti.TransferConsult})
	c.Merge(snap(2, toBilling))
	assert.Equal(t, []cti.Transfer{toBilling}, c.Transfers, "the same destination, with its name")

	later := cti.Transfer{At: at.Add(time.Minute), FromUser: cti.Ref{ID: "u-carol"}, ToQueue: cti.Ref{ID: "q-sales"}, Kind: cti.TransferBlind}
	c.Merge(snap(3, later))
	assert.Equal(t, []cti.Transfer{toBilling, later}, c.Transfers, "another transfer is added, in time order")
}

func TestWhatsAppNumber(t *testing.T) {
	for in, want := range map[string]string{
		"33612345678":    "+33612345678",
		" 4917612345678": "+4917612345678",
		"+33612345678":   "+33612345678",
		"tel:+3361234":   "tel:+3361234",
		"0612345678":     "0612345678", // a national number: not WhatsApp's form
		"1234567":        "1234567",    // too short for an international number
		"wa-id-1":        "wa-id-1",
		"":               "",
	} {
		if got := cti.WhatsAppNumber(in); got != want {
			t.Errorf("WhatsAppNumber(%q) = %q, want %q", in, got, want)
		}
	}
}
