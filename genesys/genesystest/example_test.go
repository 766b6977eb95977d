package genesystest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

// Scripting a conversation and reading it back over the REST API, as the
// Genesys SDK would.
func ExampleServer_Start() {
	srv := gt.NewServer()
	defer srv.Close()

	call := srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550100", Name: "Pat Doe", Queue: gt.QueueSupport})
	alice := call.Alert(gt.AgentAlice)
	call.Connect(alice)
	call.Transfer(alice, gt.QueueBilling)
	bob := call.Alert(gt.AgentBob)
	call.Connect(bob)
	call.End()
	call.Wrapup(alice, gt.CodeFollowUp, "to billing")
	call.Wrapup(bob, gt.CodeRefund, "refund issued")

	resp, err := http.PostForm(srv.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {srv.ClientID}, "client_secret": {srv.ClientSecret}})
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v2/conversations/"+call.ID, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var conv struct {
		Participants []struct {
			Purpose string `json:"purpose"`
			Name    string `json:"name"`
			Calls   []struct {
				State          string `json:"state"`
				DisconnectType string `json:"disconnectType"`
			} `json:"calls"`
		} `json:"participants"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&conv)
	for _, p := range conv.Participants {
		fmt.Println(p.Purpose, p.Name, p.Calls[0].State, p.Calls[0].DisconnectType)
	}
	// Output:
	// customer Pat Doe disconnected endpoint
	// acd Support disconnected transfer
	// agent Alice Martin disconnected transfer
	// acd Billing disconnected transfer
	// agent Bob Okafor disconnected peer
}

// Demo traffic: every media and channel, for the demo customers, until the
// context ends.
func ExampleServer_Play() {
	srv := gt.NewServer()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var mu sync.Mutex
	kinds := map[bool]bool{} // whatsapp or not
	srv.Play(ctx, gt.Traffic{Every: 10 * time.Millisecond, Pace: 5 * time.Millisecond, Seed: 7,
		Kinds: []gt.Kind{{Media: gt.MediaVoice}, {Media: gt.MediaMessage, MessageType: "whatsapp"}},
		Observe: func(c *gt.Conversation) { // called from Play's goroutines
			mu.Lock()
			kinds[strings.Contains(string(c.Body()), `"whatsapp"`)] = true
			mu.Unlock()
		}})
	fmt.Println(len(kinds))
	// Output: 2
}
