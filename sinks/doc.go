// Package sinks delivers every record the store commits to the programs
// that consume it: webhooks (an HTTP POST of a JSON envelope, signed with
// HMAC-SHA256) and commands (the envelope on stdin), at least once per sink,
// across crashes, restarts, receiver outages and full disks.
//
// It reads the store's commit journal (jsonstore.JournalReader) and the
// record files from disk, so the backlog lives on disk and memory stays
// bounded whatever the receiver does. Each sink keeps its own cursor in
// <out>/.mailtap/sinks/<name>/cursor.json, advanced only past records that
// were delivered or dead-lettered (dead.jsonl), with the list of records
// finished ahead of it; it is saved after every delivery (group commit), so
// a crash re-delivers only the deliveries in flight or finished during the
// last save. The store wakes the sinks
// after each commit without waiting for them (a one-slot channel), and they
// poll as a fallback, so capture never waits for a sink.
package sinks
