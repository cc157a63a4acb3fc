package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
)

// Load reads the config file at path, checks its shape, and returns it with
// defaults applied. It does not validate values; Resolve does, or call
// Validate.
//
// Problems come back as *Error naming the file, the JSON path of the field
// and, where there is one, the line and column: unknown or duplicate fields,
// a value of the wrong JSON type, a bad duration, syntax errors, an empty
// file, or data after the top-level object.
//
// Relative paths inside the file (output.dir, password_file, ca_file) are
// relative to the working directory, like the default "./mail-json".
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read config file: " + unwrapPathError(err).Error(), Err: err}
	}
	return parse(path, data)
}

// unwrapPathError drops the path from an *fs.PathError, which Error already
// names, so messages do not repeat it.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// parse decodes data (the content of file) into a Config with defaults.
func parse(file string, data []byte) (*Config, error) {
	// Editors on Windows like to start UTF-8 files with a byte order mark,
	// which encoding/json rejects with a baffling message.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))

	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: file, Msg: "file is empty; expected a JSON object"}
	}
	if err := checkSyntax(file, data); err != nil {
		return nil, err
	}

	// encoding/json reports unknown fields without a position, matches keys
	// case-insensitively and keeps the last of duplicate keys. A walk over
	// the tokens against the Config type first gives every shape error a
	// field path and a line:column, and is strict about key spelling.
	w := &walker{file: file, data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	w.dec.UseNumber()
	if err := w.document(); err != nil {
		return nil, err
	}

	cfg := Defaults()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		// The walk accepted the document, so this is a bug, not bad input.
		return nil, &Error{File: file, Msg: "decode: " + err.Error(), Err: err}
	}
	cfg.Source = file
	for i := range cfg.Accounts {
		cfg.Accounts[i].applyDefaults()
	}
	for i := range cfg.Sinks {
		cfg.Sinks[i].applyDefaults()
	}
	return cfg, nil
}

// checkSyntax reports the first syntax error with its position. It scans
// the whole input at once because json.Decoder's streaming errors carry
// offsets relative to the value being read, not to the file.
func checkSyntax(file string, data []byte) error {
	err := json.Unmarshal(data, new(json.RawMessage))
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return nil // shape errors are the walker's business
	}
	msg := se.Error()
	eof := msg == "unexpected end of JSON input"
	at := se.Offset - 1 // Offset counts the offending byte
	if eof || at < 0 || at >= int64(len(data)) {
		at = int64(len(data))
	}
	line, col := position(data, at)
	e := &Error{File: file, Line: line, Column: col, Err: err}
	switch {
	case eof:
		e.Msg = "syntax error: unexpected end of file"
	case strings.Contains(msg, "after top-level value"):
		e.Msg = "unexpected data after the top-level object"
	case data[at] == '/':
		e.Msg = "syntax error: " + msg + " (JSON has no comments)"
	case strings.Contains(msg, "in string escape code"):
		// a special-use name such as "\\Sent" written with one backslash
		e.Msg = "syntax error: " + msg + ` (a backslash in a JSON string is written twice: "\\Sent")`
	default:
		e.Msg = "syntax error: " + msg
	}
	return e
}

var (
	configType   = reflect.TypeFor[Config]()
	durationType = reflect.TypeFor[Duration]()
)

// walker checks a JSON document token by token against a Go type.
type walker struct {
	file string
	data []byte
	dec  *json.Decoder
}

func (w *walker) errAt(off int64, field, format string, args ...any) *Error {
	line, col := position(w.data, off)
	return &Error{File: w.file, Line: line, Column: col, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// next returns the offset where the next token starts. The decoder's own
// offset points just after the previous token, before any separator.
func (w *walker) next() int64 {
	off := w.dec.InputOffset()
	for off < int64(len(w.data)) {
		switch w.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

// token reads one token, turning decoder failures into errors.
func (w *walker) token() (json.Token, error) {
	off := w.next()
	tok, err := w.dec.Token()
	if err == nil {
		return tok, nil
	}
	// checkSyntax has already accepted the input, so this is unexpected;
	// the position is approximate (see checkSyntax).
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, w.errAt(int64(len(w.data)), "", "syntax error: unexpected end of file")
	}
	return nil, w.errAt(off, "", "syntax error: %v", err)
}

func (w *walker) document() error {
	start := w.next()
	tok, err := w.token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return w.errAt(start, "", "expected a JSON object, got %s", kindOf(tok))
	}
	if err := w.object(configType, ""); err != nil {
		return err
	}
	end := w.next()
	if end < int64(len(w.data)) {
		return w.errAt(end, "", "unexpected data after the top-level object")
	}
	return nil
}

// value checks the value at path against type t.
func (w *walker) value(t reflect.Type, path string) error {
	start := w.next()
	tok, err := w.token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil // null: leave the default, as encoding/json does
	}
	mismatch := func(want string) error {
		// Never echo the value: the field may be a password.
		return w.errAt(start, path, "must be %s, got %s", want, kindOf(tok))
	}
	switch {
	case t == durationType:
		s, ok := tok.(string)
		if !ok {
			return mismatch(`a duration string like "60s" or "5m"`)
		}
		if _, err := parseDuration(s); err != nil {
			return w.errAt(start, path, "%s", err.Error())
		}
		return nil
	case t.Kind() == reflect.Struct:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return mismatch("an object")
		}
		return w.object(t, path)
	case t.Kind() == reflect.Slice:
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return mismatch("an array")
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := w.token() // ']'
		return err
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return mismatch("an object")
		}
		seen := map[string]bool{}
		for w.dec.More() {
			kstart := w.next()
			ktok, err := w.token()
			if err != nil {
				return err
			}
			key, _ := ktok.(string)
			if seen[key] {
				return w.errAt(kstart, path, "duplicate key %q", key)
			}
			seen[key] = true
			if err := w.value(t.Elem(), path+"."+key); err != nil {
				return err
			}
		}
		_, err := w.token() // '}'
		return err
	case t.Kind() == reflect.String:
		if _, ok := tok.(string); !ok {
			return mismatch("a string")
		}
		return nil
	case t.Kind() == reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return mismatch("true or false")
		}
		return nil
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return mismatch("a whole number")
		}
		v, err := n.Int64()
		if err != nil || reflect.Zero(t).OverflowInt(v) {
			return w.errAt(start, path, "must be a whole number in range (got %s)", n)
		}
		return nil
	}
	return w.errAt(start, path, "internal error: no JSON rule for Go type %s", t)
}

// object checks the members of an object whose '{' has been read.
func (w *walker) object(t reflect.Type, path string) error {
	fields := jsonFields(t)
	seen := make(map[string]bool)
	for w.dec.More() {
		start := w.next()
		tok, err := w.token()
		if err != nil {
			return err
		}
		key, _ := tok.(string) // the decoder guarantees a string key here
		ft, ok := fields[key]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", key)
			if s := suggest(key, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return w.errAt(start, path, "%s", msg)
		}
		if seen[key] {
			return w.errAt(start, path, "duplicate field %q", key)
		}
		seen[key] = true
		if err := w.value(ft, joinPath(path, key)); err != nil {
			return err
		}
	}
	_, err := w.token() // '}'
	return err
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonFields maps the JSON names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

// kindOf names the JSON kind of a token for messages.
func kindOf(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "true/false"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	}
	return fmt.Sprintf("%T", tok)
}

// suggest returns the known field closest to key when it is plausibly a
// typo (edit distance at most 2), or "".
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for name := range fields {
		d := editDistance(strings.ToLower(key), name)
		if d < bestD || (d == bestD && best != "" && name < best) {
			best, bestD = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
