// Package record owns the record schema, version 1 (design.md §4 and
// docs/record.schema.json): the Go types, the encoder that writes them
// byte for byte as encoding/json would (with C1 controls escaped too), the
// decoder that reads them back, and the Summary that list views show. It
// does no I/O beyond reading one record file; the parser fills records
// and the store writes them.
package record
