package watcher

import (
	"slices"
	"testing"
)

func TestCloseMatches(t *testing.T) {
	boxes := []string{"INBOX", "INBOX.Entwürfe", "INBOX.Lists.golang", "INBOX.Lists.rust", "INBOX.Sent", "Archive.2024"}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"INBOX/Lists/golang", []string{"INBOX.Lists.golang"}}, // other delimiter
		{"Lists.golang", []string{"INBOX.Lists.golang"}},       // prefix left out
		{"Entwürfe", []string{"INBOX.Entwürfe"}},               // prefix left out, UTF-8
		{"INBOX.Entwurfe", []string{"INBOX.Entwürfe"}},         // a typo
		{"inbox.sent", []string{"INBOX.Sent"}},                 // case
		{"Nothing.Like.This", nil},
	} {
		got := closeMatches(tc.name, boxes)
		if !slices.Equal(got, tc.want) {
			t.Errorf("closeMatches(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"entwürfe", "entwurfe", 1}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}
