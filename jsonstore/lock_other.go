//go:build !unix && !windows

package jsonstore

import (
	"fmt"
	"os"
	"runtime"
)

// lockFile: this OS has no advisory lock that Go reaches, and running
// without one would let two mailtaps write the same output dir.
func lockFile(*os.File) error {
	return fmt.Errorf("no file locking on %s: mailtap cannot guard its output dir here", runtime.GOOS)
}
