// Package mailparse turns one raw RFC 5322 message into a record.Record in
// a single streaming pass, pure: it reads an io.Reader and hands decoded
// attachments to an AttachmentSink, and touches no disk and no network.
//
// It uses go-message for what go-message does well (its charset tables,
// its textproto multipart reader, mail address parsing) and does itself
// what real-world mail needs more leniency or less memory for: the
// top-level header reader (bounded, tolerant of broken folds and raw 8-bit
// bytes), RFC 2047 words and RFC 2231 parameters, base64 and
// quoted-printable decoders that never fail a message, and the choice of
// text and HTML bodies. Malformed input is described in ParseErrors and
// never fails the parse.
package mailparse
