package jsonstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCheckpoint prints the cost of one checkpoint write (SetState)
// and of one one-record commit (record + journal + checkpoint) with 10 and
// with 1,000 mailboxes already known to the store: the figure that must
// not grow with the number of mailboxes. "parallel" runs SetState from
// GOMAXPROCS goroutines on different mailboxes, which a store-wide lock
// held during the write serialises.
//
//	go test ./jsonstore -run '^$' -bench Checkpoint -benchmem
func BenchmarkCheckpoint(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("SetState/mailboxes=%d", n), func(b *testing.B) {
			s := benchStore(b, n)
			defer reportCheckpointBytes(b, s)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.SetState("acct", "box"+strconv.Itoa(i%n), 1, uint32(i+2)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("SetStateParallel/mailboxes=%d", n), func(b *testing.B) {
			s := benchStore(b, n)
			var next atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					// Each goroutine's UIDs rise; two goroutines on one
					// mailbox just skip the lower one, as SetState does.
					if err := s.SetState("acct", "box"+strconv.FormatUint(i%uint64(n), 10), 1, uint32(i+2)); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run(fmt.Sprintf("Commit1/mailboxes=%d", n), func(b *testing.B) {
			s := benchStore(b, n)
			raw := []byte(simpleMsg)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				uid := uint32(i + 2)
				batch := s.NewBatch("acct", "box"+strconv.Itoa(i%n), 1, '/')
				batch.AddBytes(uid, raw, Meta{UID: uid, InternalDate: time.Unix(1700000000, 0)})
				if _, err := batch.Commit(uid); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCheckpointBytes reports the bytes one checkpoint write rewrites
// (ckpt-B/op): the whole state.json where there is one (older versions),
// else one mailbox's file. Only os calls, so the benchmark runs unchanged
// on the code before per-mailbox files, for the before/after figures.
func reportCheckpointBytes(b *testing.B, s *Store) {
	if fi, err := os.Stat(filepath.Join(s.StateDir(), "state.json")); err == nil {
		b.ReportMetric(float64(fi.Size()), "ckpt-B/op")
		return
	}
	files, _ := filepath.Glob(filepath.Join(s.StateDir(), "state", "*.json"))
	var total int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	if len(files) > 0 {
		b.ReportMetric(float64(total)/float64(len(files)), "ckpt-B/op")
	}
}

// benchStore opens a store in a temp dir that knows n mailboxes.
func benchStore(b *testing.B, n int) *Store {
	b.Helper()
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for i := 0; i < n; i++ {
		if err := s.SetState("acct", "box"+strconv.Itoa(i), 1, 1); err != nil {
			b.Fatal(err)
		}
	}
	return s
}
