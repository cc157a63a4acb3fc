//go:build windows

package sinks

import "os/exec"

// ownGroup: Windows has no process groups to signal; on timeout the
// program itself is killed (exec's default Cancel), and WaitDelay bounds
// the wait for children that hold its pipes.
func ownGroup(cmd *exec.Cmd) {}
