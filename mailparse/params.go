package mailparse

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// parseParamHeader reads a Content-Type or Content-Disposition value:
// "value; name=val; name*=charset'lang'%XX; name*0*=…; name*1=…".
//
// It is more lenient than mime.ParseMediaType, which drops every
// parameter (the boundary included) when one of them is malformed and
// drops RFC 2231 values in charsets other than UTF-8 and US-ASCII:
// unquoted values may hold any byte but ';' ("boundary=----=_Part_1"), an
// unclosed quote runs to the end, a duplicate keeps the first, RFC 2231
// values are converted from their charset, and RFC 2047 words in name and
// filename (not standard, but what most mailers send) are decoded.
// value is lowercased; problems are messages for parse_errors.
func parseParamHeader(v string) (value string, params map[string]string, problems []string) {
	v, _ = toUTF8(v)
	semi := strings.IndexByte(v, ';')
	if semi < 0 {
		return strings.ToLower(strings.TrimSpace(v)), map[string]string{}, nil
	}
	value = strings.ToLower(strings.TrimSpace(v[:semi]))
	rest := v[semi+1:]

	type piece struct {
		val     string
		encoded bool // RFC 2231 extended value (percent-encoded)
	}
	simple := map[string]string{}
	extended := map[string]string{}        // name* (single extended value)
	sections := map[string]map[int]piece{} // name*N and name*N*
	seen := map[string]bool{}

	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " \t;")
		if rest == "" {
			break
		}
		eq := strings.IndexAny(rest, "=;")
		if eq < 0 || rest[eq] == ';' {
			end := eq
			if end < 0 {
				end = len(rest)
			}
			if junk := strings.TrimSpace(rest[:end]); junk != "" {
				problems = append(problems, fmt.Sprintf("parameter %s has no value", quoteShort(junk)))
			}
			rest = rest[end:]
			continue
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			closed := false
			for ; i < len(rest); i++ {
				c := rest[i]
				if c == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(c)
			}
			if !closed {
				problems = append(problems, fmt.Sprintf("parameter %q: unclosed quote", key))
			}
			val = b.String()
			rest = rest[i:]
			if j := strings.IndexByte(rest, ';'); j >= 0 {
				rest = rest[j:]
			} else {
				rest = ""
			}
		} else {
			j := strings.IndexByte(rest, ';')
			if j < 0 {
				j = len(rest)
			}
			val = strings.TrimSpace(rest[:j])
			rest = rest[j:]
		}
		if key == "" {
			problems = append(problems, "parameter without a name")
			continue
		}
		if seen[key] {
			problems = append(problems, fmt.Sprintf("duplicate parameter %q; the first is used", key))
			continue
		}
		seen[key] = true

		name, section, encoded, isExt := splitExtKey(key)
		switch {
		case !isExt:
			simple[key] = val
		case section < 0:
			extended[name] = val
		default:
			if sections[name] == nil {
				sections[name] = map[int]piece{}
			}
			sections[name][section] = piece{val, encoded}
		}
	}

	params = make(map[string]string, len(simple))
	for k, v := range simple {
		if k == "name" || k == "filename" {
			var more []string
			v, more = headerText(v)
			for _, m := range more {
				problems = append(problems, fmt.Sprintf("parameter %q: %s", k, m))
			}
		}
		params[k] = v
	}
	names := make([]string, 0, len(sections))
	for k := range sections {
		names = append(names, k)
	}
	sort.Strings(names) // deterministic order of problems
	for _, name := range names {
		secs := sections[name]
		var raw []byte
		cs := ""
		for n := 0; ; n++ {
			pc, ok := secs[n]
			if !ok {
				if n < len(secs) {
					problems = append(problems, fmt.Sprintf("parameter %q: RFC 2231 section %d missing; later sections dropped", name, n))
				}
				break
			}
			val := pc.val
			if pc.encoded {
				if n == 0 {
					cs, val = splitCharsetLang(val)
				}
				raw = append(raw, percentDecode(val)...)
			} else {
				raw = append(raw, val...)
			}
		}
		s, ok := decodeCharset(cs, raw)
		if !ok {
			problems = append(problems, fmt.Sprintf("parameter %q: unknown charset %q", name, cs))
		}
		params[name] = s
	}
	extNames := make([]string, 0, len(extended))
	for k := range extended {
		extNames = append(extNames, k)
	}
	sort.Strings(extNames)
	for _, name := range extNames {
		cs, val := splitCharsetLang(extended[name])
		s, ok := decodeCharset(cs, percentDecode(val))
		if !ok {
			problems = append(problems, fmt.Sprintf("parameter %q: unknown charset %q", name, cs))
		}
		params[name] = s // name* wins over name and name*N
	}
	return value, params, problems
}

// splitExtKey splits an RFC 2231 parameter name: "title*" → (title, -1,
// true, true), "title*2*" → (title, 2, true, true), "title*0" → (title, 0,
// false, true). Plain names return isExt=false.
func splitExtKey(key string) (name string, section int, encoded, isExt bool) {
	star := strings.IndexByte(key, '*')
	if star <= 0 {
		return key, -1, false, false
	}
	name, rest := key[:star], key[star+1:]
	if rest == "" {
		return name, -1, true, true
	}
	if strings.HasSuffix(rest, "*") {
		encoded = true
		rest = rest[:len(rest)-1]
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n > 999 || (len(rest) > 1 && rest[0] == '0') {
		return key, -1, false, false // not RFC 2231 after all: keep as a plain name
	}
	return name, n, encoded, true
}

// splitCharsetLang splits "charset'lang'value". Without the two quotes
// the whole string is the value.
func splitCharsetLang(s string) (cs, val string) {
	i := strings.IndexByte(s, '\'')
	if i < 0 {
		return "", s
	}
	j := strings.IndexByte(s[i+1:], '\'')
	if j < 0 {
		return "", s
	}
	return s[:i], s[i+1+j+1:]
}

// percentDecode decodes %XX; a '%' not followed by two hex digits is kept.
func percentDecode(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return b
}
