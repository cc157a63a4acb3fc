package record_test

import (
	"bytes"
	"testing"
	"time"

	"mailtap/record"
)

// Every time in a record has one format: RFC 3339, three fractional
// digits; internal_date and captured_at in UTC, date with its own offset.
func TestAppend_timesInOneFormat(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	date := time.Date(2024, 3, 5, 14, 3, 22, 0, cet)
	rec := &record.Record{SchemaVersion: 1, Date: &date,
		InternalDate: time.Date(2024, 3, 5, 14, 3, 25, 0, cet),
		CapturedAt:   time.Date(2024, 3, 5, 13, 3, 26, 120_456_789, time.UTC)}
	rec.Normalize()
	b, err := record.Append(nil, rec, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"date":"2024-03-05T14:03:22.000+01:00"`, `"internal_date":"2024-03-05T13:03:25.000Z"`,
		`"captured_at":"2024-03-05T13:03:26.120Z"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("record lacks %s:\n%s", want, b)
		}
	}
	if got := record.FormatTime(time.Date(2024, 3, 5, 14, 0, 0, 5e8, cet)); got != "2024-03-05T13:00:00.500Z" {
		t.Errorf("FormatTime = %s", got)
	}
}
