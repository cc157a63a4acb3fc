//go:build !linux

package jsonstore

import (
	"errors"
	"os"
)

// Elsewhere than Linux there is no fast path: openFastPath returns nil and
// the store always takes the portable one (named temp files, an fsync per
// file, rename, directory fsync). The methods below exist so that both
// builds share one API; a nil *fastPath is never asked to do anything.

type fastPath struct{}

type unnamedFile struct{}

var errNoFastPath = errors.New("no fast path on this OS")

func openFastPath(string, bool, func() string) (*fastPath, error) { return nil, nil }

func (*fastPath) close()                                          {}
func (*fastPath) syncfs() error                                   { return errNoFastPath }
func (*fastPath) writeTemp(string, []byte) error                  { return errNoFastPath }
func (*fastPath) renameInto(string, string, *os.File, bool) error { return errNoFastPath }
func (*fastPath) exists(*os.File, string) error                   { return errNoFastPath }
func (*fastPath) unnamedSupported() bool                          { return false }
func (*fastPath) createUnnamed([]byte) (*unnamedFile, error)      { return nil, nil }
func (*fastPath) closeUnnamed(*unnamedFile)                       {}
func (*fastPath) fsyncUnnamed(*unnamedFile) error                 { return errNoFastPath }
func (*fastPath) readUnnamed(*unnamedFile) ([]byte, error)        { return nil, errNoFastPath }
func (*fastPath) linkUnnamed(*unnamedFile, *os.File, string, bool) error {
	return errNoFastPath
}
