// Package popup decides what an agent sees when a conversation reaches
// them, and keeps ctikit from creating a customer twice.
//
// # Strategy
//
// Strategy is the standard cti.Strategy: a pure function of the rule, the
// conversation and the matched records (no I/O, deterministic, safe for
// concurrent use). Its zero value is ready; set Subject to render ticket
// subjects your way (the reference server plugs in syncmap templates):
//
//	eng, err := cti.NewEngine(src, rules,
//		cti.WithMatcher(matcher),
//		cti.WithStrategy(popup.Strategy{Subject: mySubjects}),
//		cti.WithPopper(popup.Dedupe(zendeskPopper, popup.DedupeOptions{})),
//		cti.WithChooser(panel), ...)
//
// Decisions, by the rule's popup when records match (users, or a ticket
// found by a ticket id attribute):
//
//	popup               one record                                   several records
//	none                nothing                                      nothing
//	user                show it                                      by multiple (below)
//	ticket:latest_open  show the user's most recently updated        by multiple; with choose the agent
//	                    unsolved ticket (new, open, pending, hold);  picks among each user's latest open
//	                    no open ticket: create one for the user if   ticket (or the user when they have
//	                    nomatch creates tickets, else show the user; none)
//	                    a ticket record: show it
//	ticket:new          create a ticket with the user (or the        by multiple; with choose the agent
//	                    ticket's requester) as requester             picks the user
//
//	multiple: choose  → ActionChoose with the candidates (at most cti.MaxResults);
//	                    cti.Engine runs the pick back through the strategy as
//	                    the one match: for ticket:new a ticket is created for
//	                    the picked user (a decision other than show or create
//	                    shows the pick)
//	multiple: first   → as if the most recently updated record were alone
//	multiple: none    → nothing
//
// When nothing matches, the rule's nomatch decides:
//
//	nomatch                 popup user / ticket:latest_open        popup ticket:new
//	nothing                 nothing                                nothing
//	create_user             create the customer, show them         create the customer and the ticket
//	create_ticket           create the customer and a ticket (a Zendesk ticket needs a requester)
//	create_user_and_ticket  create the customer and a ticket, show the ticket
//
// Tickets are created with CreateSpec.Subject from the Subject func and
// CreateSpec.Voice set for voice and callback conversations (a Talk Partner
// Edition voice ticket). Every decision carries a Reason for logs and the
// agent panel.
//
// # Choosing
//
// With multiple: choose the engine hands the candidates to a cti.Chooser
// (the reference server's agent panel) and pops nothing until the agent
// answers. The contract a Chooser implements:
//
//   - Offer(ctx, choice) returns as soon as the choice is on its way to
//     the agent (queued for their panel); it must not wait for the answer.
//     An error means the agent will never see it (the engine logs it).
//   - Choice.Agent is the Zendesk agent to ask; only that agent's panel
//     may show it and answer it. Choice.Candidates are users and/or tickets,
//     most recently updated first; Choice.More says Zendesk had more than
//     shown. Choice.CanCreate says the agent may ask for a new record
//     instead.
//   - The answer goes back through Engine.Choose(ctx, choice.ConversationID,
//     choice.LegID, pick): pick is one of the candidates (compared by kind
//     and id), or nil for "create new" (only when CanCreate). The engine
//     pops it for that agent and returns what was shown; cti.ErrNoChoice
//     means the leg no longer waits for an answer (answered already, or
//     the conversation is over), cti.ErrInvalid a pick that was not offered.
//   - A later Offer for the same leg replaces the earlier one.
//
// # Never creating duplicates
//
// Zendesk's search index takes minutes to include a new user, so a second
// call from the same unknown number soon after the first would create the
// customer again. Dedupe wraps the popper: it remembers, longer than the
// index lag, the user each pop created under every identity of the
// customer, and re-decides a later "create the customer" for a remembered
// identity as if the search had found them. Concurrent pops for one unknown
// customer create once. Within one conversation the engine already reuses
// what it popped (transfers, second agents).
package popup
