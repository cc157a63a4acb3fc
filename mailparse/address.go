package mailparse

import (
	"mailtap/record"
	"strings"
)

// lenientAddresses reads an address list that net/mail rejected, by RFC
// 5322 §3.4 with the obsolete syntax of §4.4 and some more leniency:
//   - comments are not part of an address or a name; a comment serves as
//     the display name only when there is no phrase, and only one outside
//     the address itself ("a@b (Name)", "(Name) <a@b>");
//   - a group's name is dropped and its members kept; a group with no
//     members, or an element that is only comments, gives no address;
//   - an obsolete route ("<@r1,@r2:user@host>") is dropped;
//   - whitespace and comments around "." and "@" are dropped (obs-local-
//     part, obs-domain);
//   - words before a bare addr-spec that are not joined to it by "." are
//     its display name ("John Smith john@example.com");
//   - ";" outside a group separates like ","; an unclosed quote is
//     ignored; an element with no "@" is kept as written, as its address.
//
// loose reports input that is not RFC 5322 even with §4 (the first three
// rules above are), for a parse error.
func lenientAddresses(v string) (out []record.Address, loose bool) {
	var (
		elem    []addrToken
		inGroup bool
		angle   int
	)
	flush := func() {
		a, ok, l := buildAddress(elem)
		if ok {
			out = append(out, a)
		}
		if l || (!ok && !inGroup && len(elem) > 0) {
			loose = true // an element of only comments is not an address
		}
		elem = elem[:0]
	}
	toks, loose := tokenizeAddresses(v)
	for _, t := range toks {
		switch {
		case t.kind == '<':
			angle++
			elem = append(elem, t)
		case t.kind == '>':
			if angle > 0 {
				angle--
			}
			elem = append(elem, t)
		case angle > 0:
			elem = append(elem, t) // a route's "," and ":" stay inside
		case t.kind == ',':
			flush()
		case t.kind == ';':
			if !inGroup {
				loose = true
			}
			flush()
			inGroup = false
		case t.kind == ':' && !inGroup && !hasKind(elem, '@'):
			elem = elem[:0] // the group's display name
			inGroup = true
		default:
			elem = append(elem, t)
		}
	}
	flush()
	if angle > 0 || inGroup {
		loose = true // unclosed
	}
	return out, loose
}

// addrToken is one lexical element of an address list: an atom (atext
// and "."), a quoted string, a comment, a domain literal, or a special.
type addrToken struct {
	kind byte // 'a' atom, 'q' quoted string, 'c' comment, 'd' domain literal, or the special itself
	text string
}

func hasKind(ts []addrToken, k byte) bool {
	for _, t := range ts {
		if t.kind == k {
			return true
		}
	}
	return false
}

func tokenizeAddresses(v string) (ts []addrToken, loose bool) {
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			var b strings.Builder
			depth := 0
			for ; i < len(v); i++ {
				c := v[i]
				if c == '\\' && i+1 < len(v) {
					i++
					b.WriteByte(v[i])
					continue
				}
				if c == '(' {
					depth++
					if depth == 1 {
						continue
					}
				}
				if c == ')' {
					depth--
					if depth == 0 {
						i++
						break
					}
				}
				b.WriteByte(c)
			}
			loose = loose || depth > 0
			ts = append(ts, addrToken{'c', b.String()})
		case c == '"':
			end := -1
			var b strings.Builder
			for j := i + 1; j < len(v); j++ {
				if v[j] == '\\' && j+1 < len(v) {
					j++
					b.WriteByte(v[j])
					continue
				}
				if v[j] == '"' {
					end = j
					break
				}
				b.WriteByte(v[j])
			}
			if end < 0 {
				i++ // an unclosed quote: ignored, the rest read as words
				loose = true
				continue
			}
			ts = append(ts, addrToken{'q', b.String()})
			i = end + 1
		case c == '[':
			end := strings.IndexByte(v[i:], ']')
			if end < 0 {
				end = len(v) - i - 1
				loose = true
			}
			ts = append(ts, addrToken{'d', v[i : i+end+1]})
			i += end + 1
		case strings.IndexByte("<>@,;:", c) >= 0:
			ts = append(ts, addrToken{c, string(c)})
			i++
		case c == ')':
			i++ // stray
			loose = true
		default:
			j := i
			for j < len(v) && strings.IndexByte(" \t\r\n()<>@,;:\"[", v[j]) < 0 {
				j++
			}
			ts = append(ts, addrToken{'a', v[i:j]})
			i = j
		}
	}
	return ts, loose
}

// buildAddress makes one address from the tokens of one list element;
// loose reports what RFC 5322 §3.4 and §4.4 do not allow.
func buildAddress(elem []addrToken) (a record.Address, ok, loose bool) {
	lt := -1
	for i, t := range elem {
		if t.kind == '<' {
			lt = i
			break
		}
	}
	if lt >= 0 {
		gt := len(elem)
		for i := lt + 1; i < len(elem); i++ {
			if elem[i].kind == '>' {
				gt = i
				break
			}
		}
		inner := words(elem[lt+1 : gt])
		for i := len(inner) - 1; i >= 0; i-- {
			if inner[i].kind == ':' {
				inner = inner[i+1:] // an obsolete route
				break
			}
		}
		a.Address = addrSpec(inner)
		loose = gt == len(elem) || !hasKind(inner, '@') || len(words(elem[min(gt+1, len(elem)):])) > 0
		a.Name = phrase(words(elem[:lt]))
		if a.Name == "" {
			outside := append(append([]addrToken{}, elem[:lt]...), elem[min(gt+1, len(elem)):]...)
			a.Name = firstComment(outside)
		}
	} else {
		ws := words(elem)
		if len(ws) == 0 {
			return a, false, false // only comments
		}
		at := -1
		for i, t := range ws {
			if t.kind == '@' {
				at = i
				break
			}
		}
		if at < 0 {
			var parts []string
			for _, t := range ws {
				parts = append(parts, t.text)
			}
			a.Address = strings.Join(parts, " ")
			loose = true
		} else {
			// The local part: the word before "@" and those joined to it by ".".
			start := at
			if at > 0 {
				start = at - 1
				for start > 0 && (ws[start-1].kind == 'a' || ws[start-1].kind == 'q') &&
					(strings.HasSuffix(ws[start-1].text, ".") || strings.HasPrefix(ws[start].text, ".")) {
					start--
				}
			}
			// The domain: the word after "@" and those joined to it by ".".
			end := at + 1
			for end < len(ws) && (end == at+1 || strings.HasSuffix(ws[end-1].text, ".") || strings.HasPrefix(ws[end].text, ".")) {
				if ws[end].kind != 'a' && ws[end].kind != 'd' {
					break
				}
				end++
			}
			a.Address = addrSpec(ws[start:end])
			loose = start > 0 || end < len(ws) || at == 0 || end == at+1
			a.Name = phrase(ws[:start])
			if a.Name == "" {
				// A comment before or after the address, not inside it.
				first, last := -1, -1
				for i, t := range elem {
					if t.kind != 'c' {
						if first < 0 {
							first = i
						}
						last = i
					}
				}
				outside := append(append([]addrToken{}, elem[:first]...), elem[last+1:]...)
				a.Name = firstComment(outside)
			}
		}
	}
	a.Name, a.Address = strings.TrimSpace(a.Name), strings.TrimSpace(a.Address)
	return a, a.Name != "" || a.Address != "", loose
}

// words drops comments.
func words(ts []addrToken) []addrToken {
	out := make([]addrToken, 0, len(ts))
	for _, t := range ts {
		if t.kind != 'c' {
			out = append(out, t)
		}
	}
	return out
}

// addrSpec joins the tokens of an addr-spec without the whitespace that
// obsolete syntax allows between them; a quoted local part keeps its quotes
// only when it needs them.
func addrSpec(ts []addrToken) string {
	var b strings.Builder
	for _, t := range ts {
		switch t.kind {
		case 'q':
			if needsQuote(t.text) {
				b.WriteString(`"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(t.text) + `"`)
			} else {
				b.WriteString(t.text)
			}
		case 'a', 'd', '@':
			b.WriteString(t.text)
		}
	}
	return clean(b.String())
}

func needsQuote(s string) bool {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return true
	}
	return strings.ContainsAny(s, " \t()<>@,;:\\\"[]")
}

// phrase makes a display name from words (atoms and quoted strings),
// decoding RFC 2047 words (also inside quotes, as mail readers do).
func phrase(ts []addrToken) string {
	var parts []string
	for _, t := range ts {
		switch t.kind {
		case 'a', 'q':
			parts = append(parts, t.text)
		}
	}
	return displayName(strings.Join(parts, " "))
}

func firstComment(ts []addrToken) string {
	for _, t := range ts {
		if t.kind == 'c' {
			if s := displayName(strings.Join(strings.Fields(t.text), " ")); s != "" {
				return s
			}
		}
	}
	return ""
}
