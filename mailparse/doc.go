// Package mailparse turns one raw RFC 5322 message into a record.Record in
// a single streaming pass, pure: it reads an io.Reader and hands decoded
// attachments to an AttachmentSink, and touches no disk and no network.
//
// It uses go-message for what go-message does well (its charset tables
// and mail address parsing) and does itself what real-world mail needs
// more leniency or less memory for:
//   - the multipart walk (RFC 2046 §5.1.1): go-message's textproto
//     multipart reader loses the rest of a multipart after two delimiter
//     lines in a row or a part header line that lost its folding
//     whitespace, and fails on a preamble line longer than its buffer.
//     boundaryScanner matches a delimiter only when "--boundary" is
//     followed by "--", linear whitespace or the line end (so nested
//     boundaries sharing a prefix stay apart), skips empty parts, reads
//     part headers leniently and streams bodies through one bounded buffer;
//   - the top-level header reader (bounded, tolerant of broken folds and
//     raw 8-bit bytes), RFC 2047 words and RFC 2231 parameters;
//   - base64, quoted-printable and uuencode decoders that never fail a
//     message, and a UTF-7 (RFC 2152) decoder, registered with go-message's
//     charset tables;
//   - the address fallback for what net/mail rejects (RFC 5322 §3.4 and
//     the obsolete syntax of §4.4);
//   - the choice of text and HTML bodies.
//
// Malformed input is described in ParseErrors and never fails the parse.
package mailparse
