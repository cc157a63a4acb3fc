package sinks

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"mailtap/jsonstore"
)

// StateDir is where a sink keeps its cursor and dead letters.
func StateDir(out, sink string) string { return filepath.Join(out, ".mailtap", "sinks", sink) }

// cursorFile is cursor.json: where the sink is in the journal, and what the
// last attempts did (for `mailtap sinks`, which runs in another process).
type cursorFile struct {
	Version int                  `json:"version"`
	Pos     jsonstore.JournalPos `json:"pos"`
	// Ahead lists the entries past Pos already delivered (or dead-lettered)
	// while an older one was still being retried: a restart skips them.
	Ahead []uint64 `json:"ahead,omitempty"`
	// Attempts counts the failed attempts of the entries past Pos not
	// finished yet, so that max_attempts and Mailtap-Attempt go on
	// across restarts. Like Ahead, it is bounded by the window.
	Attempts        map[uint64]int `json:"attempts,omitempty"`
	UpdatedAt       time.Time      `json:"updated_at"`
	Delivered       int64          `json:"delivered"` // total, all runs
	LastDelivery    time.Time      `json:"last_delivery,omitzero"`
	LastDeliveredID string         `json:"last_delivered_id,omitempty"`
	LastError       string         `json:"last_error,omitempty"`
	LastErrorAt     time.Time      `json:"last_error_at,omitzero"`
	FailingSince    time.Time      `json:"failing_since,omitzero"`
	// DeadLettering is set when the latest finished delivery was
	// dead-lettered, until one succeeds (or a replay delivers the dead
	// letters): the sink is failing meanwhile.
	DeadLettering bool `json:"dead_lettering,omitempty"`
}

func cursorPath(dir string) string { return filepath.Join(dir, "cursor.json") }

// loadCursor reads cursor.json; ok is false when the sink is new.
func loadCursor(dir string) (c cursorFile, ok bool, err error) {
	b, err := os.ReadFile(cursorPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return cursorFile{}, false, nil
	}
	if err != nil {
		return cursorFile{}, false, fmt.Errorf("read sink cursor: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Pos.Segment == 0 {
		// Written atomically, so this is outside damage. Starting over
		// would re-deliver everything or skip mail: refuse instead.
		return cursorFile{}, false, fmt.Errorf("sink cursor %s is damaged (%v): fix or remove it; removing it starts the sink at the end of the journal", cursorPath(dir), err)
	}
	return c, true, nil
}

// saveCursor writes cursor.json atomically: temp file, fsync, rename. The
// directory is not fsynced each time: after a power cut an older cursor
// may come back, which re-delivers, never skips.
func saveCursor(dir string, c cursorFile) error {
	c.Version = 1
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := cursorPath(dir) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write sink cursor: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, cursorPath(dir))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write sink cursor: %w", err)
	}
	return nil
}

// DeadLetter is a record a sink gave up on: a permanent refusal (a 4xx
// other than 408 and 429) or max_attempts used up.
type DeadLetter struct {
	Entry    jsonstore.JournalEntry `json:"entry"`
	Error    string                 `json:"error"`
	Status   int                    `json:"status,omitempty"` // HTTP status, if any
	Attempts int                    `json:"attempts"`
	At       time.Time              `json:"at"`
}

func deadPath(dir string) string { return filepath.Join(dir, "dead.jsonl") }

// withDeadLock runs fn holding dead.lock: the running mailtap appends dead
// letters while `mailtap replay --dead` (another process) removes them.
func withDeadLock(dir string, fn func() error) error {
	f, err := os.OpenFile(filepath.Join(dir, "dead.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("dead letters: %w", err)
	}
	defer f.Close()
	if err := lockExclusive(f); err != nil {
		return fmt.Errorf("lock dead letters: %w", err)
	}
	return fn()
}

// appendDead adds a dead letter durably, before the cursor may pass it.
func appendDead(dir string, d DeadLetter) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return withDeadLock(dir, func() error {
		f, err := os.OpenFile(deadPath(dir), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("write dead letter: %w", err)
		}
		_, err = f.Write(append(b, '\n'))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write dead letter: %w", err)
		}
		return nil
	})
}

// ReadDeadLetters lists a sink's dead letters, oldest first.
func ReadDeadLetters(out, sink string) ([]DeadLetter, error) { return readDead(StateDir(out, sink)) }

func readDead(dir string) ([]DeadLetter, error) {
	f, err := os.Open(deadPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	defer f.Close()
	var out []DeadLetter
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var d DeadLetter
		if json.Unmarshal(sc.Bytes(), &d) != nil {
			continue // a line torn by a crash mid-append
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return out, nil
}

func countDead(dir string) int {
	f, err := os.Open(deadPath(dir))
	if err != nil {
		return 0
	}
	defer f.Close()
	return countLines(f)
}

// countLines counts the complete lines of a dead-letter file.
func countLines(r io.Reader) int {
	n := 0
	buf := make([]byte, 64<<10)
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err != nil {
			return n
		}
	}
}

func deadKey(d DeadLetter) string {
	return fmt.Sprintf("%d\x00%s\x00%d", d.Entry.Seq, d.Entry.ID, d.At.UnixNano())
}

// removeDead drops the given dead letters (delivered by a replay) and keeps
// the rest, including any appended meanwhile.
func removeDead(dir string, done []DeadLetter) error {
	if len(done) == 0 {
		return nil
	}
	drop := map[string]bool{}
	for _, d := range done {
		drop[deadKey(d)] = true
	}
	return withDeadLock(dir, func() error {
		all, err := readDead(dir)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		for _, d := range all {
			if drop[deadKey(d)] {
				continue
			}
			b, _ := json.Marshal(d)
			buf.Write(append(b, '\n'))
		}
		tmp := deadPath(dir) + ".tmp"
		if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("rewrite dead letters: %w", err)
		}
		if f, err := os.Open(tmp); err == nil {
			f.Sync()
			f.Close()
		}
		if err := os.Rename(tmp, deadPath(dir)); err != nil {
			return fmt.Errorf("rewrite dead letters: %w", err)
		}
		return nil
	})
}
