package jsonstore

// RewindState moves a checkpoint back within the same UIDVALIDITY, which
// SetState never does. The watcher needs it when a server reuses UIDs it
// had handed out (restored from a backup: UIDNEXT at or below the
// checkpoint with UIDVALIDITY unchanged), so the reused UIDs are captured.
func (s *Store) RewindState(account, mailbox string, uidValidity, lastUID uint32) error {
	return s.setState(account, mailbox, uidValidity, lastUID, true)
}
