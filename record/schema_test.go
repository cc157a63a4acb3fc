package record

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const schemaPath = "../docs/record.schema.json"

func compileRecordSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat() // date-time is checked, not only annotated
	sch, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return sch
}

// withSession fills the fields Parse leaves to the caller, as the store
// does, so a golden becomes a complete record.
func withSession(t *testing.T, golden []byte) map[string]any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(golden))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	m["id"] = "personal/INBOX/1700000000/42"
	m["account"] = "personal"
	m["mailbox"] = "INBOX"
	m["uid_validity"] = json.Number("1700000000")
	m["uid"] = json.Number("42")
	m["internal_date"] = "2024-03-05T13:03:25.000Z"
	m["captured_at"] = "2024-03-05T13:03:26.123Z"
	m["flags"] = []any{`\Seen`}
	m["size"] = json.Number("1234")
	return m
}

func TestSchema_validatesGoldens(t *testing.T) {
	sch := compileRecordSchema(t)
	paths, err := filepath.Glob(filepath.Join("..", "mailparse", "testdata", "golden", "*.json"))
	if err != nil || len(paths) < 25 {
		t.Fatalf("goldens: %d, %v", len(paths), err)
	}
	for _, path := range paths {
		golden, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(withSession(t, golden)); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// TestSchema_rejects shows the schema is not vacuous: each change makes a
// valid record invalid.
func TestSchema_rejects(t *testing.T) {
	sch := compileRecordSchema(t)
	golden, err := os.ReadFile(filepath.Join("..", "mailparse", "testdata", "golden", "mixed_attachments.json"))
	if err != nil {
		t.Fatal(err)
	}
	att := func(m map[string]any) map[string]any { return m["attachments"].([]any)[0].(map[string]any) }
	tests := map[string]func(m map[string]any){
		"missing field":             func(m map[string]any) { delete(m, "parse_errors") },
		"null list":                 func(m map[string]any) { m["to"] = nil },
		"wrong version":             func(m map[string]any) { m["schema_version"] = json.Number("2") },
		"date not RFC 3339":         func(m map[string]any) { m["date"] = "Tue, 5 Mar 2024 14:03:22 +0100" },
		"negative size":             func(m map[string]any) { m["size"] = json.Number("-1") },
		"captured_at nanoseconds":   func(m map[string]any) { m["captured_at"] = "2024-03-05T13:03:26.123456789Z" },
		"captured_at no fraction":   func(m map[string]any) { m["captured_at"] = "2024-03-05T13:03:26Z" },
		"internal_date with offset": func(m map[string]any) { m["internal_date"] = "2024-03-05T14:03:25.000+01:00" },
		"date without milliseconds": func(m map[string]any) { m["date"] = "2024-03-05T14:03:22+01:00" },
		"uid over 32 bits":          func(m map[string]any) { m["uid"] = json.Number("4294967296") },
		"bad sha256":                func(m map[string]any) { att(m)["sha256"] = "ABC" },
		"content type params":       func(m map[string]any) { att(m)["content_type"] = "application/pdf; name=x" },
		"missing saved_as":          func(m map[string]any) { delete(att(m), "saved_as") },
		"address without name":      func(m map[string]any) { delete(m["from"].([]any)[0].(map[string]any), "name") },
	}
	for name, mutate := range tests {
		m := withSession(t, golden)
		mutate(m)
		if err := sch.Validate(m); err == nil {
			t.Errorf("%s: schema accepted it", name)
		}
	}

	// Nullable and forward-compatible fields are accepted.
	m := withSession(t, golden)
	m["date"] = nil
	att(m)["saved_as"] = "personal/INBOX/1700000000-0000000042/invoice.pdf"
	m["a_field_from_a_later_version"] = true
	if err := sch.Validate(m); err != nil {
		t.Errorf("valid variants rejected: %v", err)
	}
}

// TestSchema_matchesRecordType keeps the schema and record.go in step:
// every JSON field of Record, Address, Attachment and Header is required
// by the schema, and the schema names no field the type lacks.
func TestSchema_matchesRecordType(t *testing.T) {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Items struct {
				Required []string `json:"required"`
			} `json:"items"`
		} `json:"properties"`
		Defs map[string]struct {
			Required []string `json:"required"`
			Items    struct {
				Required []string `json:"required"`
			} `json:"items"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	check := func(what string, typ reflect.Type, required []string) {
		var fields []string
		for i := 0; i < typ.NumField(); i++ {
			fields = append(fields, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
		}
		slices.Sort(fields)
		required = slices.Clone(required)
		slices.Sort(required)
		if !slices.Equal(fields, required) {
			t.Errorf("%s: type has %q, schema requires %q", what, fields, required)
		}
	}
	check("record", reflect.TypeFor[Record](), doc.Required)
	check("address", reflect.TypeFor[Address](), doc.Defs["addresses"].Items.Required)
	check("attachment", reflect.TypeFor[Attachment](), doc.Defs["attachment"].Required)
	check("header", reflect.TypeFor[Header](), doc.Properties["headers"].Items.Required)
}
