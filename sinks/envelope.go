package sinks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mailtap/jsonstore"
	"mailtap/record"
)

// EventCaptured is the only event so far.
const EventCaptured = "message.captured"

// Envelope is what a sink receives: the record and where it is.
type Envelope struct {
	Event       string  `json:"event"`
	ID          string  `json:"id"`   // also the Idempotency-Key
	Path        string  `json:"path"` // of the record file, relative to the output dir
	Account     string  `json:"account"`
	Mailbox     string  `json:"mailbox"`
	UIDValidity uint32  `json:"uid_validity"`
	UID         uint32  `json:"uid"`
	CommittedAt Time    `json:"committed_at"`
	Summary     Summary `json:"summary"`
	// Record is the record file as written, or null when it is larger than
	// the sink's max_body_bytes; RecordOmitted then says so and the
	// receiver reads the file at Path.
	Record        json.RawMessage `json:"record"`
	RecordOmitted string          `json:"record_omitted,omitempty"`
}

// Time is a time as the envelope writes it: record.TimeLayout in UTC, the
// format of every time in records and the API, so a receiver parses one
// form (and compares them as strings).
type Time struct{ time.Time }

// MarshalJSON writes t in record.TimeLayout, in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + record.FormatTime(t.Time) + `"`), nil
}

// Summary is the part of a record a receiver needs to route it without
// the record itself.
type Summary struct {
	From    string `json:"from"`
	Subject string `json:"subject"`
	Size    int64  `json:"size"`
}

// envelopeOverhead is room for the envelope around the record.
const envelopeOverhead = 2048

// buildEnvelope reads the record file of e (from disk: nothing is kept in
// memory between deliveries) and wraps it, keeping the body under max.
func buildEnvelope(out string, e jsonstore.JournalEntry, max int64) ([]byte, error) {
	env := Envelope{Event: EventCaptured, ID: e.ID, Path: e.Path, Account: e.Account, Mailbox: e.Mailbox,
		UIDValidity: e.UIDValidity, UID: e.UID, CommittedAt: Time{e.CommittedAt},
		Summary: Summary{From: e.From, Subject: e.Subject, Size: e.Size}}
	file := filepath.Join(out, filepath.FromSlash(e.Path))
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", e.ID, err)
	}
	// Compact JSON is smaller than the (often indented) file, so a file
	// up to twice the cap may still fit.
	if st.Size() <= 2*max {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", e.ID, err)
		}
		env.Record = raw
		b, err := json.Marshal(env)
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", e.ID, err)
		}
		if int64(len(b)) <= max {
			return b, nil
		}
	}
	env.Record = json.RawMessage("null")
	env.RecordOmitted = fmt.Sprintf("the record is larger than max_body_bytes (%d); read it at path", max)
	return json.Marshal(env)
}
