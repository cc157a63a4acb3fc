package bench

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"mailtap/jsonstore"
	"mailtap/mailparse"
)

// Go benchmarks of the capture path without IMAP, for profiling:
//
//	go test ./bench -run '^$' -bench 'Parse|Store' -benchmem -cpuprofile /tmp/cpu.pprof
//
// They run only with -bench, so plain `go test ./...` never does.

var benchCorpus [][]byte

func corpus1000(b *testing.B) [][]byte {
	b.Helper()
	if benchCorpus == nil {
		benchCorpus = Corpus(DefaultSeed, 1000)
	}
	return benchCorpus
}

// BenchmarkParse is mailparse.Parse over the first 1,000 corpus messages,
// all of them and by kind; MB/s is of raw message bytes.
func BenchmarkParse(b *testing.B) {
	msgs := corpus1000(b)
	byKind := map[string][][]byte{"all": msgs}
	for i, m := range msgs {
		k := KindOf(DefaultSeed, i).String()
		byKind[k] = append(byKind[k], m)
	}
	for _, k := range []string{"all", "plain", "html", "alternative", "attachments", "forward", "large"} {
		set := byKind[k]
		if len(set) == 0 {
			continue
		}
		b.Run(k, func(b *testing.B) {
			var total int
			for _, m := range set {
				total += len(m)
			}
			b.SetBytes(int64(total / len(set)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := mailparse.Parse(bytes.NewReader(set[i%len(set)]), mailparse.ParseOptions{MaxBodyBytes: 1 << 20}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkStore is the store as the watcher drives it: Batch.Parse and
// Finish per message, Commit (encode, write, sync, rename, directory
// fsync, checkpoint) per batch, into a temp dir on the real disk. The
// figure per op is per message.
func BenchmarkStore(b *testing.B) {
	msgs := corpus1000(b)
	for _, batchSize := range []int{1, 200} {
		for _, pretty := range []bool{true, false} {
			b.Run(fmt.Sprintf("batch=%d/pretty=%v", batchSize, pretty), func(b *testing.B) {
				st, err := jsonstore.Open(b.TempDir(), jsonstore.Options{Pretty: pretty, MaxBodyBytes: 1 << 20})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				var total int
				for _, m := range msgs {
					total += len(m)
				}
				b.SetBytes(int64(total / len(msgs)))
				b.ReportAllocs()
				uid := uint32(0)
				batch := st.NewBatch("bench", "INBOX", 1, '/')
				for b.Loop() {
					uid++
					m := msgs[int(uid-1)%len(msgs)]
					p, err := batch.Parse(uid, bytes.NewReader(m))
					if err != nil {
						b.Fatal(err)
					}
					if err := batch.Finish(p, jsonstore.Meta{UID: uid, InternalDate: time.Now(), Size: int64(len(m))}); err != nil {
						b.Fatal(err)
					}
					if batch.Len() >= batchSize {
						if _, err := batch.Commit(uid); err != nil {
							b.Fatal(err)
						}
						batch = st.NewBatch("bench", "INBOX", 1, '/')
					}
				}
				if _, err := batch.Commit(uid); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
