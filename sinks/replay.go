package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"mailtap/config"
	"mailtap/jsonstore"
)

// Selection says which records a replay re-delivers: exactly one of its
// fields is set.
type Selection struct {
	Since time.Time // every journalled record committed at or after Since
	ID    string    // the record with this id
	Dead  bool      // the sink's dead letters (removed once delivered)
}

// ReplayResult is what Replay did to one record.
type ReplayResult struct {
	ID  string
	Err error // nil: delivered
}

// Replay re-delivers the selected records to the sink cfg once each, with
// the sink's concurrency, outside its cursor: it may run while mailtap
// runs. report is called once per record, from one goroutine at a time.
// It returns how many were delivered and how many failed.
func Replay(ctx context.Context, cfg config.Sink, out string, sel Selection, opts *Options, report func(ReplayResult)) (delivered, failed int, err error) {
	o := opts.withDefaults()
	d, err := newDeliverer(cfg, o.Version)
	if err != nil {
		return 0, 0, err
	}
	defer d.close()
	s := &sink{cfg: cfg, out: out, d: d, clock: o.Clock, m: o.Metrics}
	for _, p := range cfg.Mailboxes {
		mp, err := config.CompileMailboxPattern(p)
		if err != nil {
			return 0, 0, err
		}
		s.patterns = append(s.patterns, mp)
	}
	dir := StateDir(out, cfg.Name)

	type job struct {
		e    jsonstore.JournalEntry
		dead *DeadLetter
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var done []DeadLetter
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				abs := filepath.Join(out, filepath.FromSlash(j.e.Path))
				res := s.attempt(ctx, j.e, abs, 1)
				mu.Lock()
				if res.err == nil {
					delivered++
					if j.dead != nil {
						done = append(done, *j.dead)
					}
				} else {
					failed++
				}
				report(ReplayResult{ID: j.e.ID, Err: res.err})
				mu.Unlock()
			}
		}()
	}
	var selErr error
	send := func(j job) bool {
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			return false
		}
	}
	switch {
	case sel.Dead:
		var list []DeadLetter
		list, selErr = readDead(dir)
		for i := range list {
			if !send(job{e: list[i].Entry, dead: &list[i]}) {
				break
			}
		}
	default:
		found := false
		r := jsonstore.NewJournalReader(out, jsonstore.JournalPos{})
		for ctx.Err() == nil {
			e, err := r.Next(jsonstore.JournalPos{})
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				selErr = err
				break
			}
			switch {
			case sel.ID != "":
				if e.ID != sel.ID {
					continue
				}
				found = true
			case !s.matches(e) || e.CommittedAt.Before(sel.Since):
				continue
			}
			if !send(job{e: e}) || found {
				break
			}
		}
		r.Close()
		if sel.ID != "" && !found && selErr == nil {
			selErr = fmt.Errorf("record %q is not in the journal (%s)", sel.ID, jsonstore.JournalDir(out))
		}
	}
	close(jobs)
	wg.Wait()
	if err := removeDead(dir, done); err != nil && selErr == nil {
		selErr = err
	}
	if selErr == nil {
		selErr = ctx.Err()
	}
	return delivered, failed, selErr
}

// Snapshot is the on-disk state of a sink, for `mailtap sinks` (which runs
// beside or without the mailtap that delivers).
func Snapshot(cfg config.Sink, out string) (Status, error) {
	dir := StateDir(out, cfg.Name)
	st := Status{Name: cfg.Name, Type: cfg.Type, Target: cfg.Target(), State: StateStopped}
	cur, ok, err := loadCursor(dir)
	if err != nil {
		return st, err
	}
	end, err := jsonstore.ReadJournalEnd(out)
	if err != nil {
		return st, fmt.Errorf("read journal: %w", err)
	}
	if !ok {
		st.State = "new"
		return st, nil
	}
	if end.Seq > cur.Pos.Seq {
		st.Backlog = int64(end.Seq - cur.Pos.Seq)
	}
	st.Delivered, st.LastDelivery, st.LastError, st.LastErrorAt, st.FailingSince = cur.Delivered, cur.LastDelivery, cur.LastError, cur.LastErrorAt, cur.FailingSince
	st.DeadLetters = countDead(dir)
	return st, nil
}
