package record

import "time"

// SchemaVersion is the version of Record written in "schema_version".
// Fields may be added within a version; none is ever renamed or removed.
const SchemaVersion = 1

// Record is one captured message, schema v1 (design.md §4). Every slice is
// written as [] when empty, never null.
type Record struct {
	SchemaVersion int    `json:"schema_version"`
	ID            string `json:"id"` // "<account>/<mailbox>/<uidvalidity>/<uid>"
	Account       string `json:"account"`
	Mailbox       string `json:"mailbox"`
	UIDValidity   uint32 `json:"uid_validity"`
	UID           uint32 `json:"uid"`

	MessageID  string   `json:"message_id"`
	InReplyTo  []string `json:"in_reply_to"`
	References []string `json:"references"`
	Subject    string   `json:"subject"`

	From    []Address `json:"from"`
	Sender  []Address `json:"sender"`
	ReplyTo []Address `json:"reply_to"`
	To      []Address `json:"to"`
	Cc      []Address `json:"cc"`
	Bcc     []Address `json:"bcc"`

	Date         *time.Time `json:"date"` // null if absent or unparsable
	InternalDate time.Time  `json:"internal_date"`
	CapturedAt   time.Time  `json:"captured_at"`
	Flags        []string   `json:"flags"`
	Size         int64      `json:"size"`

	Text        string       `json:"text"`
	HTML        string       `json:"html"`
	Truncated   bool         `json:"truncated"`
	Attachments []Attachment `json:"attachments"`
	Headers     []Header     `json:"headers"`
	ParseErrors []string     `json:"parse_errors"`
}

// Address is one mailbox of an address list header.
type Address struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// Attachment describes a leaf part that is not the chosen text or HTML body.
type Attachment struct {
	Filename    string  `json:"filename"`
	ContentType string  `json:"content_type"` // bare lowercase media type
	Disposition string  `json:"disposition"`  // attachment | inline | ""
	ContentID   string  `json:"content_id"`   // without angle brackets
	Size        int64   `json:"size"`         // decoded bytes
	SHA256      string  `json:"sha256"`       // hex of decoded bytes
	SavedAs     *string `json:"saved_as"`     // relative to <out>, or null
}

// Header is one header field of the top-level message, unfolded.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TimeLayout is the one format of every time in records and the API:
// RFC 3339 with exactly three fractional digits. internal_date and
// captured_at are in UTC ("Z"); date keeps the offset of the Date header.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// FormatTime formats t in TimeLayout, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Summary is the part of a Record that UIs show in a list.
type Summary struct {
	ID          string    `json:"id"`
	Account     string    `json:"account"`
	Mailbox     string    `json:"mailbox"`
	UIDValidity uint32    `json:"uid_validity"`
	UID         uint32    `json:"uid"`
	From        string    `json:"from"` // display form: "Name <addr>" or addr
	Subject     string    `json:"subject"`
	Date        time.Time `json:"date"` // Date header, or internal date when absent
	Size        int64     `json:"size"`
	Attachments int       `json:"attachments"`
	Path        string    `json:"path"` // absolute path of the JSON file
	ParseErrors int       `json:"parse_errors"`
}

// Normalize replaces nil slices with empty ones so JSON has [] not null.
func (r *Record) Normalize() {
	for _, p := range []*[]string{&r.InReplyTo, &r.References, &r.Flags, &r.ParseErrors} {
		if *p == nil {
			*p = []string{}
		}
	}
	for _, p := range []*[]Address{&r.From, &r.Sender, &r.ReplyTo, &r.To, &r.Cc, &r.Bcc} {
		if *p == nil {
			*p = []Address{}
		}
	}
	if r.Attachments == nil {
		r.Attachments = []Attachment{}
	}
	if r.Headers == nil {
		r.Headers = []Header{}
	}
}

// SummaryOf condenses r, stored at path, for list views and events.
func SummaryOf(r *Record, path string) Summary {
	s := Summary{
		ID: r.ID, Account: r.Account, Mailbox: r.Mailbox,
		UIDValidity: r.UIDValidity, UID: r.UID,
		Subject: r.Subject, Size: r.Size,
		Attachments: len(r.Attachments), Path: path,
		ParseErrors: len(r.ParseErrors),
		Date:        r.InternalDate,
	}
	if r.Date != nil {
		s.Date = *r.Date
	}
	if len(r.From) > 0 {
		s.From = r.From[0].Display()
	}
	return s
}

// Display renders an address as "Name <addr>", or just addr without a name.
func (a Address) Display() string {
	switch {
	case a.Name == "":
		return a.Address
	case a.Address == "":
		return a.Name
	default:
		return a.Name + " <" + a.Address + ">"
	}
}
