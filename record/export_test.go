package record

// AppendQuoted lets the external tests reach the string encoder.
var AppendQuoted = appendQuoted
