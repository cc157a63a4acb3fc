package jsonstore

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameBytes keeps every path element well under the 255-byte limit of
// common filesystems, leaving room for suffixes such as "-2".
const maxNameBytes = 200

// windowsReserved are device names that break the output dir when it is
// shared with Windows (SMB, WSL); they are prefixed with "_".
var windowsReserved = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true,
	"COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true,
	"LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
}

// SafeName turns one untrusted path element (an account name, a mailbox
// level, an attachment file name) into a name that stays inside its folder:
// no separators, no "." or "..", no control characters, no leading dot,
// no Windows device names, at most maxNameBytes bytes of valid UTF-8.
// It returns "_" for names with nothing usable left.
func SafeName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(name, "_") {
		switch {
		case r == '/' || r == '\\' || r == 0:
			b.WriteRune('_')
		case unicode.IsControl(r) || r == utf8.RuneError:
			b.WriteRune('_')
		case strings.ContainsRune(`:*?"<>|`, r):
			b.WriteRune('_')
		case unicode.Is(unicode.Cf, r): // bidi overrides and other invisible formatting
			b.WriteRune('_')
		default:
			b.WriteRune(r)
		}
	}
	s := strings.TrimSpace(b.String())
	s = strings.TrimRight(s, ". ") // Windows drops trailing dots and spaces
	for strings.HasPrefix(s, ".") {
		s = "_" + s[1:]
	}
	if s == "" {
		return "_"
	}
	base := s
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	if windowsReserved[strings.ToUpper(base)] {
		s = "_" + s
	}
	if len(s) > maxNameBytes {
		s = truncateKeepExt(s, maxNameBytes)
	}
	return s
}

// truncateKeepExt cuts s to at most n bytes on a rune boundary, keeping a
// short extension so the saved file still opens with the right program.
func truncateKeepExt(s string, n int) string {
	ext := filepath.Ext(s)
	if len(ext) > 16 || len(ext) >= n {
		ext = ""
	}
	stem := s[:len(s)-len(ext)]
	limit := n - len(ext)
	for len(stem) > limit {
		_, size := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-size]
	}
	return stem + ext
}

// MailboxRelDir is the folder of a mailbox's records relative to <out>:
// <account>/<level>/<level>…, each element made safe on its own, so "/" in a
// mailbox name (or the server's delimiter, passed as delim) becomes folders.
func MailboxRelDir(account, mailbox string, delim rune) string {
	parts := []string{SafeName(account)}
	sep := func(r rune) bool { return r == '/' || (delim != 0 && r == delim) }
	for _, level := range strings.FieldsFunc(mailbox, sep) {
		parts = append(parts, SafeName(level))
	}
	if len(parts) == 1 {
		parts = append(parts, "_")
	}
	return filepath.Join(parts...)
}

// RecordBaseName is "<uidvalidity>-<uid %010d>", the stem shared by the
// record, its .eml and its attachment folder.
func RecordBaseName(uidValidity, uid uint32) string {
	return fmt.Sprintf("%d-%010d", uidValidity, uid)
}

// RecordID is the record's "id" field.
func RecordID(account, mailbox string, uidValidity, uid uint32) string {
	return fmt.Sprintf("%s/%s/%d/%d", account, mailbox, uidValidity, uid)
}
