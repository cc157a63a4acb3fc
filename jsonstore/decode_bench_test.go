package jsonstore

import (
	"bytes"
	"encoding/base64"
	"io"
	"testing"
)

func b64Input() ([]byte, int) {
	raw := make([]byte, 1<<20)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	var b bytes.Buffer
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	return b.Bytes(), len(raw)
}

func BenchmarkB64Mine(b *testing.B) {
	in, _ := b64Input()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		io.Copy(io.Discard, newBase64Reader(bytes.NewReader(in)))
	}
}

func BenchmarkB64Std(b *testing.B) {
	in, _ := b64Input()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		io.Copy(io.Discard, base64.NewDecoder(base64.StdEncoding, bytes.NewReader(in)))
	}
}
