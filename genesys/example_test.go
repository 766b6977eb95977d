package genesys_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	"github.com/cxplay/ctikit/genesys/genesystest"
)

// A Source on the emulator: a call rings an agent of the subscribed queue
// and arrives decoded. In production the Config comes from
// genesys.ConfigFromEnv.
func ExampleNewSource() {
	srv := genesystest.NewServer(genesystest.WithHeartbeat(100 * time.Millisecond))
	defer srv.Close()
	cfg := genesys.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, APIURL: srv.URL}
	client, err := genesys.NewClient(cfg)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	src, err := genesys.NewSource(client, genesys.WithQueues(genesystest.QueueSupport))
	if err != nil {
		panic(err)
	}
	got := make(chan *cti.Conversation, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- src.Run(ctx, cti.HandlerFunc(func(_ context.Context, c *cti.Conversation) error {
			got <- c
			return nil
		}))
	}()
	for src.Ready() != nil { // connected and subscribed
		time.Sleep(10 * time.Millisecond)
	}

	call := srv.Start(genesystest.Spec{Media: genesystest.MediaVoice, From: "+1 415 555 0100", Name: "Pat Doe", Queue: genesystest.QueueSupport})
	call.Alert(genesystest.AgentAlice)
	for c := range got {
		if len(c.Agents) == 0 {
			continue // the call waiting in the queue
		}
		l := c.Agents[0]
		fmt.Println(c.Media, c.Direction, c.Queue.Name, c.Customer.Phone, c.Customer.Name)
		fmt.Println(l.Name, l.Email, l.State)
		break
	}
	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// voice inbound Support +14155550100 Pat Doe
	// Alice Martin alice.martin@example.com alerting
	// stopped: <nil>
}

// Decoding a notification frame by hand (the Source does this for every
// frame it receives).
func ExampleDecoder_Frame() {
	frame := `{"topicName":"v2.users.u-1.conversations","version":"2","eventBody":{
	  "id":"c-1","participants":[
	    {"id":"p-cust","purpose":"customer","name":"Ada","messages":[{"id":"m1","state":"connected","direction":"inbound","type":"whatsapp",
	      "fromAddress":{"addressNormalized":"+447700900123","name":"Ada"},"toAddress":{"addressNormalized":"+18005550199"}}]},
	    {"id":"p-agent","purpose":"agent","userId":"u-1","name":"Alice","queueId":"q-1","wrapupRequired":true,
	      "messages":[{"id":"m2","state":"disconnected","disconnectType":"client","direction":"inbound","type":"whatsapp",
	        "wrapup":{"code":"w-1","notes":"sorted","durationSeconds":12},"afterCallWork":{"state":"complete"}}]}]},
	  "metadata":{"CorrelationId":"x"}}`
	dec := &genesys.Decoder{} // DefaultPhone; set Phone for E.164
	topic, c, err := dec.Frame([]byte(frame), time.Now())
	if err != nil {
		panic(err)
	}
	l := c.Leg("p-agent")
	fmt.Println(topic)
	fmt.Println(c.Kind(), c.Customer.Phone, c.Customer.Name)
	fmt.Println(l.State, l.Wrapup.Code, l.Wrapup.Duration, l.ACW, l.Phase())
	// Output:
	// v2.users.u-1.conversations
	// whatsapp +447700900123 Ada
	// disconnected w-1 12s complete done
}

// ConfigFromLookup (and ConfigFromEnv) name the variable to fix.
func ExampleConfigFromLookup() {
	env := map[string]string{
		genesys.EnvClientID:     "client-id",
		genesys.EnvClientSecret: "s3cr3t",
		genesys.EnvRegion:       "eu-west-9",
	}
	_, err := genesys.ConfigFromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	fmt.Println(strings.SplitN(err.Error(), ": use", 2)[0])

	env[genesys.EnvRegion] = "eu-west-1"
	cfg, _ := genesys.ConfigFromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	fmt.Println(cfg.APIBase(), cfg.LoginBase())
	fmt.Println(cfg) // the secret is never printed
	// Output:
	// GENESYSCLOUD_REGION: "eu-west-9": unknown region
	// https://api.mypurecloud.ie https://login.mypurecloud.ie
	// genesys.Config{client client-id, secret set, eu-west-1}
}

// A summary from any AI engine, used when Genesys has none.
func ExampleWithSummarizer() {
	srv := genesystest.NewServer()
	defer srv.Close()
	client, _ := genesys.NewClient(genesys.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, APIURL: srv.URL})
	defer client.Close()

	chat := srv.Start(genesystest.Spec{Media: genesystest.MediaChat, From: "kim@example.org", Name: "Kim", Body: "Where is my parcel?", Queue: genesystest.QueueSupport})
	leg := chat.Alert(genesystest.AgentBob)
	chat.Connect(leg)
	chat.Say(leg, "It ships today.")
	chat.Disconnect(leg)
	chat.Wrapup(leg, genesystest.CodeResolved, "")

	llm := genesys.SummarizerFunc(func(_ context.Context, c *cti.Conversation) (genesys.Summary, error) {
		lines := strings.Count(c.Content.Transcript, "\n") + 1
		return genesys.Summary{Text: fmt.Sprintf("%d-line chat with %s", lines, c.Customer.Name), Source: "my-llm"}, nil
	})
	en, err := genesys.NewEnricher(client, genesys.WithSummarizer(llm, false))
	if err != nil {
		panic(err)
	}
	c, _ := client.Conversation(context.Background(), chat.ID, nil)
	if err := en.Enrich(context.Background(), c); err != nil {
		panic(err)
	}
	fmt.Println(c.Content.Summary, "by", c.Content.SummarySource)
	fmt.Println(c.Agents[0].Name, "/", c.Agents[0].Wrapup.Name, "/", c.Agents[0].Wrapup.Category)
	// Output:
	// 2-line chat with Kim by my-llm
	// Bob Okafor / Resolved / Customer Support
}
