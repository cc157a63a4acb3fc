package mailparse

import (
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/transform"
)

// UTF-7 (RFC 2152) is not in x/text or go-message, and the Go packages
// that offer it either implement IMAP's modified UTF-7 (RFC 3501), which
// differs, or fail a whole text on one stray byte. This decoder is small
// and lenient instead; it is registered with go-message's charset tables,
// so bodies, encoded words and RFC 2231 parameters all reach it.
func init() {
	for _, name := range []string{"utf-7", "utf7", "unicode-1-1-utf-7", "csunicode11utf7", "x-unicode-2-0-utf-7"} {
		charset.RegisterEncoding(name, utf7Encoding{})
	}
}

type utf7Encoding struct{}

func (utf7Encoding) NewDecoder() *encoding.Decoder {
	return &encoding.Decoder{Transformer: &utf7Decoder{}}
}

// NewEncoder is not needed to read mail; it refuses everything.
func (utf7Encoding) NewEncoder() *encoding.Encoder {
	return encoding.Replacement.NewEncoder()
}

// utf7Decoder turns UTF-7 into UTF-8. Direct characters pass through; "+"
// starts modified base64 holding UTF-16, which ends at the first byte
// outside the base64 alphabet ("-" is absorbed); "+-" is "+". Leniently,
// 8-bit bytes (never valid UTF-7) are read as Windows-1252, and a lone or
// unpaired surrogate becomes U+FFFD (a pair split over two runs is
// joined).
type utf7Decoder struct {
	shift   bool   // inside a base64 run
	fresh   bool   // just after the "+": a "-" now means "+"
	bits    uint32 // base64 bits not yet used
	nbits   uint
	pending rune // a high surrogate waiting for its pair, or 0
}

func (d *utf7Decoder) Reset() { *d = utf7Decoder{} }

var b64Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = int8(i)
	}
	return t
}()

func (d *utf7Decoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	// Each input byte yields at most one rune plus a flushed surrogate.
	const room = 2 * utf8.UTFMax
	for nSrc < len(src) {
		if len(dst)-nDst < room {
			return nDst, nSrc, transform.ErrShortDst
		}
		c := src[nSrc]
		if d.shift {
			if v := b64Index[c]; v >= 0 {
				d.fresh = false
				d.bits = d.bits<<6 | uint32(v)
				d.nbits += 6
				if d.nbits >= 16 {
					d.nbits -= 16
					unit := rune(d.bits >> d.nbits & 0xffff)
					d.bits &= 1<<d.nbits - 1
					nDst += d.unit(dst[nDst:], unit)
				}
				nSrc++
				continue
			}
			// The run ends; leftover bits (fewer than 16) are padding.
			wasFresh := d.fresh
			d.shift, d.fresh, d.bits, d.nbits = false, false, 0, 0
			if wasFresh {
				// "+-" is "+"; a "+" before anything else is ill-formed
				// and kept as written.
				dst[nDst] = '+'
				nDst++
			}
			if c == '-' {
				nSrc++
				continue
			}
		}
		nSrc++
		switch {
		case c == '+':
			d.shift, d.fresh = true, true
		case c < utf8.RuneSelf:
			nDst += d.flushPending(dst[nDst:])
			dst[nDst] = c
			nDst++
		default:
			nDst += d.flushPending(dst[nDst:])
			nDst += utf8.EncodeRune(dst[nDst:], charmap.Windows1252.DecodeByte(c))
		}
	}
	if atEOF {
		if len(dst)-nDst < room {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += d.flushPending(dst[nDst:])
		if d.fresh {
			// A "+" at the very end: not a shift after all.
			dst[nDst] = '+'
			nDst++
		}
		d.Reset()
	}
	return nDst, nSrc, nil
}

// unit writes one UTF-16 code unit, pairing surrogates.
func (d *utf7Decoder) unit(dst []byte, u rune) int {
	switch {
	case utf16.IsSurrogate(u) && u < 0xdc00: // high
		n := d.flushPending(dst)
		d.pending = u
		return n
	case utf16.IsSurrogate(u): // low
		if d.pending == 0 {
			return utf8.EncodeRune(dst, utf8.RuneError)
		}
		r := utf16.DecodeRune(d.pending, u)
		d.pending = 0
		return utf8.EncodeRune(dst, r)
	default:
		n := d.flushPending(dst)
		return n + utf8.EncodeRune(dst[n:], u)
	}
}

// flushPending writes U+FFFD for a high surrogate left without its pair.
func (d *utf7Decoder) flushPending(dst []byte) int {
	if d.pending == 0 {
		return 0
	}
	d.pending = 0
	return utf8.EncodeRune(dst, utf8.RuneError)
}
