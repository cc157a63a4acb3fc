package jsonstore

import "testing"

func TestAttachmentName(t *testing.T) {
	tests := []struct {
		index           int
		filename, ctype string
		want            string
	}{
		{0, "", "message/rfc822", "attachment-1.eml"},
		{1, "", "text/calendar", "attachment-2.ics"},
		{2, "", "image/png", "attachment-3.png"},
		{0, "", "IMAGE/JPEG", "attachment-1.jpg"},
		{0, "", "application/vnd.example+xml", "attachment-1.xml"},
		{0, "", "text/x-unknown", "attachment-1.txt"},
		{0, "", "application/x-unknown", "attachment-1"},
		{0, "", "application/octet-stream", "attachment-1.bin"},
		{0, "..", "image/png", "attachment-1.png"}, // nothing usable left of the name
		{0, "photo", "image/png", "photo"},         // a name is kept as sent
		{0, "invite.ics", "text/calendar", "invite.ics"},
		{0, "../x.pdf", "application/pdf", "_._x.pdf"},
	}
	for _, tt := range tests {
		if got := attachmentName(tt.index, tt.filename, tt.ctype); got != tt.want {
			t.Errorf("attachmentName(%d, %q, %q) = %q, want %q", tt.index, tt.filename, tt.ctype, got, tt.want)
		}
	}
}
