package syncmap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
)

// A minimal JSON-over-HTTP bridge so that a child process (the crash
// tests) uses a Zendesk fake living in the parent, which outlives it. The
// errors the sink branches on (status, Retry-After, not found, rejected
// fields) cross the bridge intact.

type rpcRequest struct {
	Method string          `json:"method"`
	ID     int64           `json:"id,omitempty"`
	Args   json.RawMessage `json:"args,omitempty"`
}

type rpcError struct {
	Status     int           `json:"status"`
	RetryAfter time.Duration `json:"retryAfter"`
	Temporary  bool          `json:"temporary"`
	NotFound   bool          `json:"notFound"`
	FieldIDs   []int64       `json:"fieldIds"`
	Msg        string        `json:"msg"`
}

type rpcResponse struct {
	Result json.RawMessage `json:"result,omitempty"`
	Err    *rpcError       `json:"err,omitempty"`
}

// rpcHandler serves zd.
func rpcHandler(zd syncmap.Zendesk) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req rpcRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ctx := r.Context()
		var (
			res any
			err error
		)
		switch req.Method {
		case "Ticket":
			res, err = zd.Ticket(ctx, req.ID)
		case "Tickets":
			var ids []int64
			_ = json.Unmarshal(req.Args, &ids)
			res, err = zd.Tickets(ctx, ids)
		case "TicketsByExternalID":
			var ext string
			_ = json.Unmarshal(req.Args, &ext)
			res, err = zd.TicketsByExternalID(ctx, ext)
		case "RequestedTickets":
			res, err = zd.RequestedTickets(ctx, req.ID)
		case "CreateTicket":
			var nt syncmap.NewTicket
			_ = json.Unmarshal(req.Args, &nt)
			res, err = zd.CreateTicket(ctx, nt)
		case "UpdateTicket":
			var u syncmap.TicketUpdate
			_ = json.Unmarshal(req.Args, &u)
			res, err = zd.UpdateTicket(ctx, req.ID, u)
		case "UpdateMany":
			var us []syncmap.TicketUpdate
			_ = json.Unmarshal(req.Args, &us)
			var rs []syncmap.UpdateResult
			rs, err = zd.UpdateMany(ctx, us)
			out := make([]rpcResult, len(rs))
			for i, x := range rs {
				out[i] = rpcResult{UpdateResult: x, Err: encodeErr(x.Err)}
			}
			res = out
		case "TicketComments":
			res, err = zd.TicketComments(ctx, req.ID)
		case "CreateCall":
			var c syncmap.Call
			_ = json.Unmarshal(req.Args, &c)
			res, err = zd.CreateCall(ctx, c)
		case "UpdateCall":
			var c syncmap.Call
			_ = json.Unmarshal(req.Args, &c)
			res, err = zd.UpdateCall(ctx, req.ID, c)
		case "Call":
			res, err = zd.Call(ctx, req.ID)
		default:
			err = fmt.Errorf("unknown method %q", req.Method)
		}
		var resp rpcResponse
		if err != nil {
			resp.Err = encodeErr(err)
		} else {
			resp.Result, _ = json.Marshal(res)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

type rpcResult struct {
	syncmap.UpdateResult
	Err *rpcError `json:"err,omitempty"`
}

func encodeErr(err error) *rpcError {
	if err == nil {
		return nil
	}
	e := &rpcError{Msg: err.Error(), NotFound: errors.Is(err, cti.ErrNotFound), FieldIDs: syncmap.RejectedFields(err)}
	var u *cti.UpstreamError
	if errors.As(err, &u) {
		e.Status, e.RetryAfter, e.Temporary = u.Status, u.RetryAfter, u.Temporary
	} else {
		e.Temporary = cti.IsRetryable(err)
	}
	return e
}

func (e *rpcError) decode() error {
	if e == nil {
		return nil
	}
	var inner error = errors.New(e.Msg)
	if e.NotFound {
		inner = fmt.Errorf("%s: %w", e.Msg, cti.ErrNotFound)
	}
	u := &cti.UpstreamError{Service: "zendesk", Op: "rpc", Status: e.Status, RetryAfter: e.RetryAfter, Temporary: e.Temporary, Err: inner}
	if len(e.FieldIDs) > 0 {
		return &syncmap.FieldError{FieldIDs: e.FieldIDs, Message: e.Msg, Err: u}
	}
	return u
}

// rpcZendesk is the client side.
type rpcZendesk struct {
	url string
	hc  *http.Client
}

var _ syncmap.Zendesk = (*rpcZendesk)(nil)

func call[T any](ctx context.Context, z *rpcZendesk, method string, id int64, args any) (T, error) {
	var zero T
	req := rpcRequest{Method: method, ID: id}
	if args != nil {
		req.Args, _ = json.Marshal(args)
	}
	b, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, z.url, bytes.NewReader(b))
	if err != nil {
		return zero, err
	}
	resp, err := z.hc.Do(hr)
	if err != nil {
		return zero, &cti.UpstreamError{Service: "zendesk", Op: method, Temporary: true, Err: err}
	}
	defer resp.Body.Close()
	var out rpcResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return zero, &cti.UpstreamError{Service: "zendesk", Op: method, Temporary: true, Err: err}
	}
	if out.Err != nil {
		return zero, out.Err.decode()
	}
	var v T
	if err := json.Unmarshal(out.Result, &v); err != nil {
		return zero, err
	}
	return v, nil
}

func (z *rpcZendesk) Ticket(ctx context.Context, id int64) (*syncmap.Ticket, error) {
	return call[*syncmap.Ticket](ctx, z, "Ticket", id, nil)
}

func (z *rpcZendesk) Tickets(ctx context.Context, ids []int64) ([]syncmap.Ticket, error) {
	return call[[]syncmap.Ticket](ctx, z, "Tickets", 0, ids)
}

func (z *rpcZendesk) TicketsByExternalID(ctx context.Context, ext string) ([]syncmap.Ticket, error) {
	return call[[]syncmap.Ticket](ctx, z, "TicketsByExternalID", 0, ext)
}

func (z *rpcZendesk) RequestedTickets(ctx context.Context, userID int64) ([]syncmap.Ticket, error) {
	return call[[]syncmap.Ticket](ctx, z, "RequestedTickets", userID, nil)
}

func (z *rpcZendesk) CreateTicket(ctx context.Context, t syncmap.NewTicket) (*syncmap.Ticket, error) {
	return call[*syncmap.Ticket](ctx, z, "CreateTicket", 0, t)
}

func (z *rpcZendesk) UpdateTicket(ctx context.Context, id int64, u syncmap.TicketUpdate) (*syncmap.Ticket, error) {
	return call[*syncmap.Ticket](ctx, z, "UpdateTicket", id, u)
}

func (z *rpcZendesk) UpdateMany(ctx context.Context, us []syncmap.TicketUpdate) ([]syncmap.UpdateResult, error) {
	rs, err := call[[]rpcResult](ctx, z, "UpdateMany", 0, us)
	if err != nil {
		return nil, err
	}
	out := make([]syncmap.UpdateResult, len(rs))
	for i, r := range rs {
		out[i] = r.UpdateResult
		out[i].Err = r.Err.decode()
	}
	return out, nil
}

func (z *rpcZendesk) TicketComments(ctx context.Context, id int64) ([]syncmap.Comment, error) {
	return call[[]syncmap.Comment](ctx, z, "TicketComments", id, nil)
}

func (z *rpcZendesk) CreateCall(ctx context.Context, c syncmap.Call) (*syncmap.Call, error) {
	return call[*syncmap.Call](ctx, z, "CreateCall", 0, c)
}

func (z *rpcZendesk) UpdateCall(ctx context.Context, id int64, c syncmap.Call) (*syncmap.Call, error) {
	return call[*syncmap.Call](ctx, z, "UpdateCall", id, c)
}

func (z *rpcZendesk) Call(ctx context.Context, id int64) (*syncmap.Call, error) {
	return call[*syncmap.Call](ctx, z, "Call", id, nil)
}
