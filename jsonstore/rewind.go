package jsonstore

import "path/filepath"

// RewindState moves a checkpoint back within the same UIDVALIDITY, which
// SetState never does. The watcher needs it when a server reuses UIDs it
// had handed out (restored from a backup: UIDNEXT at or below the
// checkpoint with UIDVALIDITY unchanged), so the reused UIDs are captured.
func (s *Store) RewindState(account, mailbox string, uidValidity, lastUID uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := stateKey(account, mailbox)
	prev, had := s.state.Mailboxes[key]
	delete(s.state.Mailboxes, key)
	if err := s.setStateLocked(account, mailbox, uidValidity, lastUID); err != nil {
		if had {
			s.state.Mailboxes[key] = prev
		}
		return err
	}
	return nil
}

// ReadCheckpoint reads the checkpoints of the output dir out without
// opening (and locking) the store, for `mailtap check`, which may run
// beside a live mailtap. A missing file is no checkpoints.
func ReadCheckpoint(out string) (map[string]MailboxState, error) {
	s := &Store{stateDir: filepath.Join(out, ".mailtap")}
	if err := s.loadCheckpoint(); err != nil {
		return nil, err
	}
	m := make(map[string]MailboxState, len(s.state.Mailboxes))
	for k, v := range s.state.Mailboxes {
		m[k] = *v
	}
	return m, nil
}

// CheckpointKey is the key of a mailbox in ReadCheckpoint's map.
func CheckpointKey(account, mailbox string) string { return stateKey(account, mailbox) }
