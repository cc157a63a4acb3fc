package tui

import (
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"charm.land/bubbles/v2/key"
)

// The README's key tables and the KeyMap name the same keys: every key of
// every binding is documented, and nothing documented is unbound.
func TestREADME_keyTableMatchesKeyMap(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(b), "### The TUI\n")
	sec, _, _ = strings.Cut(sec, "\n## ")
	row := regexp.MustCompile("(?m)^\\| ([^|]*`[^|]*) \\| [^|]+\\|$")
	tick := regexp.MustCompile("`([^`]+)`")
	documented := map[string]bool{}
	for _, r := range row.FindAllStringSubmatch(sec, -1) {
		for _, k := range tick.FindAllStringSubmatch(r[1], -1) {
			documented[k[1]] = true
		}
	}
	if len(documented) == 0 {
		t.Fatal("no key table in the README's TUI section")
	}
	bound := map[string]bool{}
	km := reflect.ValueOf(DefaultKeyMap())
	for i := range km.NumField() {
		kb, ok := km.Field(i).Interface().(key.Binding)
		if !ok {
			continue
		}
		if len(kb.Keys()) == 0 {
			t.Errorf("KeyMap.%s has no keys", km.Type().Field(i).Name)
		}
		for _, k := range kb.Keys() {
			bound[k] = true
			if !documented[k] {
				t.Errorf("KeyMap.%s binds %q; the README's key tables do not list it", km.Type().Field(i).Name, k)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(documented)) {
		if !bound[k] {
			t.Errorf("the README lists %q; no KeyMap binding has it", k)
		}
	}
}
