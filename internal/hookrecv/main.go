// Command hookrecv is the webhook receiver the end-to-end tests and the
// benchmarks run in a process of its own. It verifies each delivery's
// Mailtap-Signature with the recipe the README gives receivers, logs every
// request as a JSON line, and answers as told: POST /_mode with a body of
//
//	ok          200 to everything (the default)
//	fail:0.3    500 to a random 30% of deliveries, 200 to the rest
//	status:400  that status to everything
//	hang        never answer (until the mode changes or the client gives up)
//	delay:5s    answer 200 after that long
//
// Usage: hookrecv --addr 127.0.0.1:0 --log FILE [--secret-env NAME]
// It prints "listening http://ADDR" on stdout once it accepts connections.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

type logLine struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"` // Idempotency-Key
	Attempt   string    `json:"attempt"`
	SigOK     bool      `json:"sig_ok"`
	Status    int       `json:"status"`
	Bytes     int       `json:"bytes"`
	Committed time.Time `json:"committed_at"`
	At        time.Time `json:"at"`
}

type server struct {
	secret []byte

	mu   sync.Mutex
	mode string
	log  *os.File
	wake chan struct{} // closed when the mode changes
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	logPath := flag.String("log", "", "append a JSON line per request here")
	secretEnv := flag.String("secret-env", "", "environment variable holding the HMAC secret")
	mode := flag.String("mode", "ok", "initial mode (see the package doc)")
	flag.Parse()
	s := &server{mode: *mode, wake: make(chan struct{})}
	if *secretEnv != "" {
		s.secret = []byte(os.Getenv(*secretEnv))
	}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hookrecv:", err)
			os.Exit(1)
		}
		s.log = f
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookrecv:", err)
		os.Exit(1)
	}
	fmt.Printf("listening http://%s\n", ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_mode", s.setMode)
	mux.HandleFunc("POST /", s.receive)
	fmt.Fprintln(os.Stderr, (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln))
	os.Exit(1)
}

func (s *server) setMode(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.mode = strings.TrimSpace(string(b))
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// verify is the README's recipe, as a receiver would write it.
func verify(secret, body []byte, header string) bool {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(header), []byte(want))
}

func (s *server) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var env struct {
		ID          string    `json:"id"`
		CommittedAt time.Time `json:"committed_at"`
	}
	json.Unmarshal(body, &env)
	line := logLine{ID: env.ID, Key: r.Header.Get("Idempotency-Key"), Attempt: r.Header.Get("Mailtap-Attempt"),
		SigOK: len(s.secret) == 0 || verify(s.secret, body, r.Header.Get("Mailtap-Signature")), Bytes: len(body), Committed: env.CommittedAt}
	status := http.StatusOK
	for {
		s.mu.Lock()
		mode, wake := s.mode, s.wake
		s.mu.Unlock()
		switch {
		case mode == "hang":
			select {
			case <-wake:
				continue
			case <-r.Context().Done():
				return // the client gave up: nothing was accepted
			}
		case strings.HasPrefix(mode, "fail:"):
			p, _ := strconv.ParseFloat(strings.TrimPrefix(mode, "fail:"), 64)
			if rand.Float64() < p {
				status = http.StatusInternalServerError
			}
		case strings.HasPrefix(mode, "status:"):
			status, _ = strconv.Atoi(strings.TrimPrefix(mode, "status:"))
		case strings.HasPrefix(mode, "delay:"):
			d, _ := time.ParseDuration(strings.TrimPrefix(mode, "delay:"))
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		break
	}
	if !line.SigOK {
		status = http.StatusUnauthorized
	}
	line.Status, line.At = status, time.Now()
	if s.log != nil {
		b, _ := json.Marshal(line)
		s.mu.Lock()
		s.log.Write(append(b, '\n')) // before the answer: what was accepted is on file
		s.mu.Unlock()
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "status %d\n", status)
}
