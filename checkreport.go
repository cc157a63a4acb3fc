package main

import (
	"fmt"
	"io"

	"mailtap/watcher"
)

// printCatchUpCheck reports what `check` learnt from running the
// catch-up query: how many messages mailtap would capture now, the
// server's own numbers to compare, and a warning where they disagree.
func printCatchUpCheck(w io.Writer, r watcher.CheckResult) {
	delim := "none (flat)"
	if r.Delimiter != 0 {
		delim = fmt.Sprintf("%q", string(r.Delimiter))
	}
	fmt.Fprintf(w, "     catch-up: %d message(s) above UID %d to capture; newest UID %d, UIDNEXT %d; delimiter %s\n",
		r.Found, r.Checkpoint, r.NewestUID, r.UIDNext, delim)
	if r.Warning != "" {
		fmt.Fprintf(w, "WARN %s: %s\n", r.Mailbox, r.Warning)
	}
}
