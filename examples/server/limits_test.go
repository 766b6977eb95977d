package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSlowlorisIsCut: a client that trickles its request headers is
// disconnected once ReadHeaderTimeout (5 s) has passed, whatever it sends;
// other clients are served meanwhile.
func TestSlowlorisIsCut(t *testing.T) {
	t.Parallel()
	r := startDemo(t)
	addr := strings.TrimPrefix(r.base, "http://")
	var conns []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n"))
		require.NoError(t, err)
		conns = append(conns, c)
	}
	start := time.Now()
	closed := make(chan time.Duration, len(conns))
	for i, c := range conns {
		go func() {
			// Trickle a header line every 500 ms until the server hangs up.
			for k := 0; ; k++ {
				if _, err := c.Write([]byte("X-Slow-" + string(rune('a'+i%26)) + ": 1\r\n")); err != nil {
					break
				}
				_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
					break // closed (or answered 408 then closed)
				}
				if time.Since(start) > 15*time.Second {
					break
				}
			}
			closed <- time.Since(start)
		}()
	}
	// Served meanwhile.
	assert.Equal(t, 200, r.get("/healthz").StatusCode)
	for range conns {
		d := <-closed
		assert.Less(t, d, 8*time.Second, "a slow client was cut after %v", d)
		assert.Greater(t, d, 4*time.Second, "cut before the header timeout: %v", d)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestBodyLimits: request bodies are capped on every handler (1 MiB
// server-wide, 16 KiB for the panel's choose call): an oversized body is
// refused, not read to the end.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	r := startDemo(t)
	big := bytes.Repeat([]byte("x"), 4<<20)
	// (POST /panel/ is the page: it reads no body and answers at once.)
	for _, path := range []string{"/panel/api/choose?agent=201", "/healthz", "/metrics"} {
		resp, err := http.Post(r.base+path, "application/json", bytes.NewReader(big))
		if err != nil {
			continue // the server hung up mid-body: refused
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.GreaterOrEqual(t, resp.StatusCode, 400, "POST %s with 4 MiB", path)
	}
	// A raw request that announces a huge body gets an answer without the
	// server reading it all.
	c, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("POST /panel/api/choose?agent=201 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{\"conversationId\":\""))
	require.NoError(t, err)
	go func() { // keep sending; the server must answer long before 1 GiB
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for range 64 {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.GreaterOrEqual(t, resp.StatusCode, 400)
}
