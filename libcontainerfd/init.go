package libcontainerfd

import "github.com/containerfd/containerfd/libcontainerfd/internal/stage"

// Init runs the library's child side when the process is one: the library
// starts its own binary (os.Executable, run from a read-only bind) as init
// or an exec'd process through the Go stage, as the watcher of a
// KillOnClose container, and as the helpers of hooks and idmapped mounts,
// each recognised by its argv[0]. Init then never returns. Otherwise it
// returns at once, having done nothing.
//
// A program that uses the library calls Init first thing in main (and a
// test binary in TestMain), as runc's init.go calls libcontainer.Init:
// nothing else of the program may run in a stage.
func Init() { stage.Main() }
