package record

import (
	"encoding/json"
	"fmt"
	"os"
)

// ReadRecord reads and decodes one record file. Fields added by later schema
// versions are ignored; a file that is not a mailtap record is an error.
func ReadRecord(path string) (*Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
	return DecodeRecord(data, path)
}

// DecodeRecord decodes the bytes of a record file; path is only used in
// error messages.
func DecodeRecord(data []byte, path string) (*Record, error) {
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode record %s: %w", path, err)
	}
	if rec.SchemaVersion < 1 || rec.ID == "" {
		return nil, fmt.Errorf("decode record %s: not a mailtap record (no schema_version or id)", path)
	}
	rec.Normalize()
	return &rec, nil
}
