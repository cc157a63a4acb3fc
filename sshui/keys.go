package sshui

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// role is what an authenticated key may do.
type role int

const (
	roleNone     role = iota
	roleReadOnly      // sees everything, controls nothing
	roleFull          // pause, resume, reconnect
)

func (r role) String() string {
	switch r {
	case roleFull:
		return "full"
	case roleReadOnly:
		return "read-only"
	}
	return "none"
}

// keyFile is one OpenSSH authorized_keys file, reread when its size,
// mtime or inode changes. The check is a stat at each lookup (each
// authentication and each new session): no watcher goroutine, and an edit
// takes effect on the next login, including a key removed to lock someone
// out (their open sessions stay; a new session on the same connection is
// refused).
type keyFile struct {
	path  string
	field string // config field, for messages
	log   *slog.Logger

	mu   sync.Mutex
	stat fileStamp
	keys map[string]bool // gossh.PublicKey.Marshal()
}

type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func newKeyFile(path, field string, log *slog.Logger) *keyFile {
	return &keyFile{path: path, field: field, log: log}
}

// load reads the file now; an unreadable file is an error at start, where
// the operator can fix it.
func (f *keyFile) load() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("ssh: %s: %w", f.field, err)
	}
	return f.reloadLocked(stampOf(st))
}

// contains reports whether key is listed, rereading the file first if it
// changed. If the file has become unreadable, it lists nothing (and says
// so in the log): failing closed.
func (f *keyFile) contains(key gossh.PublicKey) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		if f.keys != nil {
			f.log.Warn("ssh: key file unreadable: no key from it is accepted until it is back", "field", f.field, "path", f.path, "err", err)
		}
		f.keys, f.stat = nil, fileStamp{}
		return false
	}
	if s := stampOf(st); s != f.stat {
		if err := f.reloadLocked(s); err != nil {
			f.log.Warn("ssh: reload key file", "field", f.field, "err", err)
		}
	}
	return f.keys[string(key.Marshal())]
}

func (f *keyFile) reloadLocked(s fileStamp) error {
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.keys, f.stat = nil, fileStamp{}
		return fmt.Errorf("ssh: %s: %w", f.field, err)
	}
	keys, skipped := parseAuthorizedKeys(data)
	for _, sk := range skipped {
		f.log.Warn("ssh: key file line skipped", "field", f.field, "path", f.path, "line", sk.line, "why", sk.why)
	}
	if f.stat != (fileStamp{}) {
		f.log.Info("ssh: key file reloaded", "field", f.field, "path", f.path, "keys", len(keys))
	}
	f.keys, f.stat = keys, s
	return nil
}

type skippedLine struct {
	line int
	why  string
}

// parseAuthorizedKeys reads the OpenSSH authorized_keys format (sshd(8)).
// Lines with options (from=, command=, restrict …) are skipped rather than
// accepted without their restrictions: a from="10.0.0.0/8" that is
// silently ignored would widen access.
func parseAuthorizedKeys(data []byte) (map[string]bool, []skippedLine) {
	keys := map[string]bool{}
	var skipped []skippedLine
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		pk, _, opts, _, err := gossh.ParseAuthorizedKey(line)
		switch {
		case err != nil:
			skipped = append(skipped, skippedLine{i + 1, "not a public key: " + err.Error()})
		case len(opts) > 0:
			skipped = append(skipped, skippedLine{i + 1, "key options are not supported; list the bare key"})
		default:
			keys[string(pk.Marshal())] = true
		}
	}
	return keys, skipped
}

// keyring is both files. A key listed in both is read-only: the stricter
// listing wins.
type keyring struct {
	full, readOnly *keyFile
}

func (k *keyring) role(key gossh.PublicKey) role {
	if key == nil {
		return roleNone
	}
	switch {
	case k.readOnly.contains(key):
		return roleReadOnly
	case k.full.contains(key):
		return roleFull
	}
	return roleNone
}
