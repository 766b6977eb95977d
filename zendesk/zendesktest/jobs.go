package zendesktest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// job is an update_many or create_many background job.
type job struct {
	id        string
	create    bool // create_many: updates are new tickets
	updates   []*ticketIn
	principal string
	doneAt    time.Time
	done      bool
	results   []map[string]any
}

func (c *call) updateMany() {
	var in struct {
		Ticket  *ticketIn   `json:"ticket"`
		Tickets []*ticketIn `json:"tickets"`
	}
	if err := decodeBody(c.body, &in); err != nil {
		c.badJSON(err)
		return
	}
	updates := in.Tickets
	if ids := c.r.URL.Query().Get("ids"); ids != "" {
		if in.Ticket == nil {
			writeError(c.w, http.StatusBadRequest, "InvalidValue", "ticket is required with ids")
			return
		}
		updates = nil
		for _, f := range strings.Split(ids, ",") {
			id, ok := parseID(f)
			if !ok {
				writeError(c.w, http.StatusBadRequest, "InvalidValue", "ids: "+f+" is not a ticket id")
				return
			}
			u := *in.Ticket
			u.ID = id
			updates = append(updates, &u)
		}
	}
	if len(updates) == 0 {
		writeError(c.w, http.StatusBadRequest, "InvalidValue", "tickets is required")
		return
	}
	if len(updates) > 100 {
		writeError(c.w, http.StatusBadRequest, "TooManyValues", fmt.Sprintf("%d tickets: at most 100 per request", len(updates)))
		return
	}
	for i, u := range updates {
		if u == nil || u.ID <= 0 {
			writeError(c.w, http.StatusBadRequest, "InvalidValue", fmt.Sprintf("tickets[%d]: id is required", i))
			return
		}
	}
	s := c.s
	j := &job{id: fmt.Sprintf("%032x", s.newID()), updates: updates, principal: c.principal,
		doneAt: time.Now().Add(s.opt.jobDelay)}
	s.jobs[j.id] = j
	s.undone++
	writeJSON(c.w, http.StatusOK, map[string]any{"job_status": s.jobJSON(j, "queued")})
}

// createMany queues the creation of up to 100 tickets (POST
// /api/v2/tickets/create_many with {"tickets": [...]}); the job status
// results are {"index": i, "id": new id}, or an error for that ticket.
func (c *call) createMany() {
	var in struct {
		Tickets []*ticketIn `json:"tickets"`
	}
	if err := decodeBody(c.body, &in); err != nil {
		c.badJSON(err)
		return
	}
	if len(in.Tickets) == 0 {
		writeError(c.w, http.StatusBadRequest, "InvalidValue", "tickets is required")
		return
	}
	if len(in.Tickets) > 100 {
		writeError(c.w, http.StatusBadRequest, "TooManyValues", fmt.Sprintf("%d tickets: at most 100 per request", len(in.Tickets)))
		return
	}
	for i, t := range in.Tickets {
		if t == nil {
			writeError(c.w, http.StatusBadRequest, "InvalidValue", fmt.Sprintf("tickets[%d]: must be an object", i))
			return
		}
	}
	s := c.s
	j := &job{id: fmt.Sprintf("%032x", s.newID()), create: true, updates: in.Tickets, principal: c.principal,
		doneAt: time.Now().Add(s.opt.jobDelay)}
	s.jobs[j.id] = j
	s.undone++
	writeJSON(c.w, http.StatusOK, map[string]any{"job_status": s.jobJSON(j, "queued")})
}

func (s *Server) jobJSON(j *job, status string) map[string]any {
	m := map[string]any{"id": j.id, "url": s.URL + "/api/v2/job_statuses/" + j.id + ".json",
		"total": len(j.updates), "progress": 0, "status": status, "message": nil, "results": nil}
	if j.done {
		m["status"], m["progress"], m["results"] = "completed", len(j.updates), j.results
		m["message"] = "Completed at " + ts(j.doneAt)
	}
	return m
}

func (c *call) jobStatus(id string) {
	j := c.s.jobs[id]
	if j == nil {
		c.notFound()
		return
	}
	status := "queued"
	if !j.done && c.s.opt.jobDelay > 0 && time.Until(j.doneAt) < c.s.opt.jobDelay/2 {
		status = "working"
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"job_status": c.s.jobJSON(j, status)})
}

// settle runs the jobs that are due. Called with s.mu held.
func (s *Server) settle(now time.Time) {
	if s.undone == 0 {
		return
	}
	for _, j := range s.jobs {
		if j.done || now.Before(j.doneAt) {
			continue
		}
		c := &call{s: s, principal: j.principal}
		if j.create {
			for i, in := range j.updates {
				t, e := c.newTicket(in, "api")
				if e != nil {
					r := map[string]any{"index": i, "error": e.code, "details": e.details}
					if e.fieldID != 0 {
						r["ticket_field_id"] = e.fieldID
					}
					j.results = append(j.results, r)
					continue
				}
				j.results = append(j.results, map[string]any{"index": i, "id": t.ID})
			}
			j.done = true
			s.undone--
			continue
		}
		for i, u := range j.updates {
			t := s.tickets[u.ID]
			switch {
			case t == nil:
				j.results = append(j.results, map[string]any{"id": u.ID, "index": i, "error": "RecordNotFound",
					"details": fmt.Sprintf("Ticket %d not found", u.ID), "success": false})
			default:
				if e := c.applyUpdate(t, u); e != nil {
					r := map[string]any{"id": u.ID, "index": i, "error": "TicketUpdateFailed", "details": e.details, "success": false}
					if e.fieldID != 0 {
						r["ticket_field_id"] = e.fieldID
					}
					j.results = append(j.results, r)
					continue
				}
				j.results = append(j.results, map[string]any{"id": u.ID, "index": i, "action": "update", "success": true, "status": "Updated"})
			}
		}
		j.done = true
		s.undone--
	}
}
