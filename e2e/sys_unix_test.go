//go:build unix

package e2e

import (
	"os"
	"syscall"
	"testing"
)

// nobodyIDs is the owner of dir (testimap chowns the mail root to the mail
// user).
func nobodyIDs(t *testing.T, dir string) (int, int) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}
