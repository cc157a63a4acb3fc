package jsonstore

import "testing"

// unnamedOpen is the number of unnamed temp files the store holds open.
func unnamedOpen(s *Store) int64 {
	if s.fast == nil {
		return 0
	}
	return s.fast.unnamedOpen.Load()
}

// TestStore_unnamedCap: past the cap on open unnamed files, records are
// written to named temp files instead, in the same batch.
func TestStore_unnamedCap(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{Pretty: true})
	if s.fast == nil || !s.fast.unnamedSupported() {
		t.Skip("no O_TMPFILE here")
	}
	s.fast.maxUnnamed.Store(3)
	commitN(t, s, dir, 1, 40, "capped")
}
