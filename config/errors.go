package config

import (
	"errors"
	"strconv"
	"strings"
)

// ErrNoConfig is wrapped by the error Resolve returns when there is neither a
// config file nor MAILTAP_HOST. main may use it to suggest --demo.
var ErrNoConfig = errors.New("no configuration")

// Error is a problem with the configuration: the file cannot be read or
// parsed, or a value is invalid. main exits 2 on it (errors.As).
//
// It prints like a compiler diagnostic so editors can jump to it:
//
//	config.json:12:5: accounts[0]: unknown field "hots" (did you mean "host"?)
//	config.json: accounts[1].tls: must be one of implicit, starttls, none (got "ssl")
//	environment: accounts[0].port (from MAILTAP_PORT): must be 1..65535 (got 0)
//
// Validate joins several Errors with errors.Join; errors.As finds the first.
type Error struct {
	File   string // the config file as given, or "environment"
	Line   int    // 1-based; 0 when the problem has no single position
	Column int    // 1-based byte column; 0 with Line
	Field  string // JSON path such as "accounts[1].password_env"; "" for the whole file
	Env    string // the environment variable the field came from, if any
	Msg    string
	Err    error // underlying cause, if any (os errors, ErrNoConfig)
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File == "" {
		return e.Msg
	}
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column))
	}
	if e.Field != "" || e.Env != "" {
		b.WriteString(": ")
		switch {
		case e.Field == "":
			b.WriteString(e.Env)
		case e.Env != "":
			b.WriteString(e.Field + " (from " + e.Env + ")")
		default:
			b.WriteString(e.Field)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// position converts a byte offset in data to a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = 1 + strings.Count(string(before), "\n")
	col = int(off) + 1
	if i := strings.LastIndexByte(string(before), '\n'); i >= 0 {
		col = int(off) - i
	}
	return line, col
}
