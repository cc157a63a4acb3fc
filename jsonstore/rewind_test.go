package jsonstore

import "testing"

func TestStore_rewindStateMovesBackAndPersists(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetState("a", "INBOX", 7, 99); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState("a", "INBOX", 7, 10); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.State("a", "INBOX"); st.LastUID != 99 {
		t.Fatalf("SetState moved back to %d", st.LastUID)
	}
	if err := s.RewindState("a", "INBOX", 7, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, ok := s.State("a", "INBOX"); !ok || st.LastUID != 0 || st.UIDValidity != 7 {
		t.Errorf("after rewind and reopen: %+v %v", st, ok)
	}
}
