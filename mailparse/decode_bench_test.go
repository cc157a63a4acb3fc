package mailparse

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// BenchmarkBase64Reader decodes 1 MiB of binary wrapped at 76 columns.
func BenchmarkBase64Reader(b *testing.B) {
	raw := make([]byte, 1<<20)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	var in bytes.Buffer
	for len(enc) > 76 {
		in.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	in.WriteString(enc)
	b.SetBytes(int64(in.Len()))
	for b.Loop() {
		io.Copy(io.Discard, newBase64Reader(bytes.NewReader(in.Bytes())))
	}
}

// BenchmarkQPReader decodes 256 KiB of mixed-language prose.
func BenchmarkQPReader(b *testing.B) {
	prose := strings.Repeat("The quick brown fox jumps over the lazy dog. Größe, café, naïve — «Привет, мир»!\r\n", 3000)
	var in bytes.Buffer
	w := quotedprintable.NewWriter(&in)
	w.Write([]byte(prose))
	w.Close()
	b.SetBytes(int64(in.Len()))
	for b.Loop() {
		r := newQPReader(bytes.NewReader(in.Bytes()))
		io.Copy(io.Discard, r)
		releaseDecoders(nil, r)
	}
}
