// Command containerd-shim-containerfd-v2 is containerd's runtime shim for
// containerfd (runtime type io.containerd.containerfd.v2): it links
// libcontainerfd and holds each container itself, where runc's shim runs a
// runtime binary for every call. The shim is package
// github.com/containerfd/containerfd/shim.
package main

import (
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/shim"
)

func main() {
	// A process the library started from this binary (a stage, the
	// kill-on-close watcher, a hook's entry) runs its part here and exits.
	cfd.Init()
	shim.Main()
}
