package testimap

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// multiAppend logs in to addr and appends msgs to mailbox in order with
// MULTIAPPEND (RFC 3502) and LITERAL+ (RFC 7888), a batch per command: one
// round trip per batch instead of per message. It returns the UIDs from
// APPENDUID (UIDPLUS). imapclient has no MULTIAPPEND, hence the raw
// protocol; Dovecot offers all three extensions.
func multiAppend(addr, username, password, mailbox string, msgs [][]byte) ([]uint32, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	w := bufio.NewWriterSize(conn, 64<<10)
	deadline := func() { conn.SetDeadline(time.Now().Add(time.Minute)) }

	deadline()
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* OK") {
		return nil, fmt.Errorf("greeting %q: %v", line, err)
	}
	fmt.Fprintf(w, "a LOGIN %s %s\r\n", quoted(username), quoted(password))
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if _, err := readTagged(r, "a"); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}

	const maxBatch, maxBatchBytes = 500, 8 << 20
	uids := make([]uint32, 0, len(msgs))
	for start, n := 0, 0; start < len(msgs); start += n {
		tag := "b" + strconv.Itoa(start)
		fmt.Fprintf(w, "%s APPEND %s", tag, quoted(mailbox))
		size := 0
		for n = 0; start+n < len(msgs) && n < maxBatch && (n == 0 || size < maxBatchBytes); n++ {
			m := msgs[start+n]
			fmt.Fprintf(w, " {%d+}\r\n", len(m))
			w.Write(m)
			size += len(m)
		}
		w.WriteString("\r\n")
		deadline()
		if err := w.Flush(); err != nil {
			return nil, err
		}
		line, err := readTagged(r, tag)
		if err != nil {
			return nil, fmt.Errorf("append messages %d-%d: %w", start+1, start+n, err)
		}
		got, err := appendUIDs(line)
		if err != nil {
			return nil, err
		}
		if len(got) != n {
			return nil, fmt.Errorf("APPENDUID names %d messages, %d appended: %q", len(got), n, line)
		}
		uids = append(uids, got...)
	}
	fmt.Fprintf(w, "z LOGOUT\r\n")
	w.Flush()
	return uids, nil
}

// readTagged reads responses until tag's, which it returns if it is OK.
func readTagged(r *bufio.Reader, tag string) (string, error) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if n := literalSize([]byte(line)); n > 0 {
			if _, err := io.CopyN(io.Discard, r, n); err != nil {
				return "", err
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			line = strings.TrimRight(line, "\r\n")
			if !strings.HasPrefix(rest, "OK") {
				return line, fmt.Errorf("server said %q", line)
			}
			return line, nil
		}
	}
}

// appendUIDs expands the UID set of "[APPENDUID <uidvalidity> <set>]".
func appendUIDs(line string) ([]uint32, error) {
	_, after, ok := strings.Cut(line, "[APPENDUID ")
	if !ok {
		return nil, fmt.Errorf("no APPENDUID in %q", line)
	}
	fields := strings.Fields(strings.SplitN(after, "]", 2)[0])
	if len(fields) != 2 {
		return nil, fmt.Errorf("malformed APPENDUID in %q", line)
	}
	var uids []uint32
	for _, r := range strings.Split(fields[1], ",") {
		lo, hi, isRange := strings.Cut(r, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("APPENDUID set %q: %w", fields[1], err)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil {
				return nil, fmt.Errorf("APPENDUID set %q: %w", fields[1], err)
			}
		}
		if b < a {
			a, b = b, a
		}
		for u := a; u <= b; u++ {
			uids = append(uids, uint32(u))
		}
	}
	return uids, nil
}

// quoted is s as an IMAP quoted string.
func quoted(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
