//go:build !linux

package jsonstore

// unnamedOpen: there are no unnamed temp files off Linux.
func unnamedOpen(*Store) int64 { return 0 }
