package spawn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"golang.org/x/sys/unix"
)

// A child with a Proc is a copy of the runtime until its last exec, and
// its /proc/self/exe is the runtime's binary. Were it to exec the program
// itself, a program that is a script with "#!/proc/self/exe" (or whose ELF
// interpreter is a link to it) would make the kernel load that binary, as
// the interpreter, into a new process of the container that the container
// may open and later write (CVE-2019-5736). So the child execs the
// trampoline instead: a static program of a few dozen instructions in a
// sealed memfd, which execs the program in turn. By then /proc/self/exe is
// the trampoline, which nothing can write.
//
// The trampoline takes argv = [report fd in decimal, path, the program's
// argv...] and the program's environment. It marks the report fd
// close-on-exec and execve(2)s path; should that fail, it writes a step
// record (stageExecve, errno) to the report fd and exits 127. Any other
// argv (fewer than three, or argv[0] not a number, as when the kernel runs
// it as a script's interpreter) makes it exit 127 at once.

// trampolineName is the memfd's name: /proc/<pid>/exe shows
// "/memfd:containerfd-exec (deleted)" while the trampoline runs.
const trampolineName = "containerfd-exec"

var trampoline = sync.OnceValues(makeTrampoline)

// MemfdExec is the trampoline, an executable memfd: the kernel makes none
// with vm.memfd_noexec=2, and some architectures have no trampoline here.
// Without it, callers start processes some other way that keeps the
// runtime's binary out of reach.
var MemfdExec = kernfeat.Register("memfd-exec",
	"a direct child execs the program through the exec trampoline in a sealed memfd (CVE-2019-5736); without it, the Go stage starts the process",
	func() bool {
		_, err := trampoline()
		return err == nil
	})

// TrampolineFD returns the trampoline's fd, made once per process; it
// fails where MemfdExec is not available.
func TrampolineFD() (int, error) {
	if MemfdExec.Disabled() {
		return -1, errors.New("spawn: exec trampoline: memfd exec disabled (" + kernfeat.EnvDisable + ")")
	}
	return trampoline()
}

func makeTrampoline() (int, error) {
	arch, ok := trampolines[runtime.GOARCH]
	if !ok {
		return -1, fmt.Errorf("spawn: exec trampoline: none for %s", runtime.GOARCH)
	}
	fd, err := sealedProgram(trampolineName, trampolineELF(arch))
	if err != nil {
		return -1, fmt.Errorf("spawn: exec trampoline: %w", err)
	}
	return fd, nil
}

// sealedProgram makes an executable, sealed, close-on-exec memfd named
// name that holds image.
func sealedProgram(name string, image []byte) (int, error) {
	// MFD_EXEC (Linux 6.3) says the memfd is to be executed, which
	// vm.memfd_noexec=1 asks for; older kernels refuse the flag.
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	if n, err := unix.Write(fd, image); err != nil || n != len(image) {
		if err == nil {
			err = unix.EIO
		}
		return fail("write", err)
	}
	if err := unix.Fchmod(fd, 0o555); err != nil {
		return fail("chmod", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_FUTURE_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals|unix.F_SEAL_EXEC); err == unix.EINVAL {
		// F_SEAL_EXEC (Linux 6.3) also keeps the mode as it is.
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
		if err != nil {
			return fail("seal", err)
		}
	} else if err != nil {
		return fail("seal", err)
	}
	return fd, nil
}

// trampolineELF lays a trampoline out as a static executable whose code
// reports failures as stageExecve.
func trampolineELF(arch trampolineArch) []byte {
	b := staticELF(arch.machine, arch.code)
	binary.LittleEndian.PutUint32(b[len(b)-len(arch.code)+arch.stageOff:], stageExecve)
	return b
}

// staticELF lays code out as a static ELF64 executable for machine: the
// header, a PT_LOAD of the whole file (read and execute), a PT_GNU_STACK
// that keeps the stack non-executable, then the code.
func staticELF(machine uint16, code []byte) []byte {
	const (
		base     = 0x400000
		ehsize   = 64
		phsize   = 56
		codeOff  = ehsize + 2*phsize
		ptLoad   = 1
		ptStack  = 0x6474e551
		pfX, pfW = 1, 2
		pfR      = 4
	)
	le := binary.LittleEndian
	b := make([]byte, codeOff+len(code))
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little-endian */, 1 /* version */})
	le.PutUint16(b[16:], 2) // ET_EXEC
	le.PutUint16(b[18:], machine)
	le.PutUint32(b[20:], 1)            // version
	le.PutUint64(b[24:], base+codeOff) // entry
	le.PutUint64(b[32:], ehsize)       // program headers
	le.PutUint16(b[52:], ehsize)       // header size
	le.PutUint16(b[54:], phsize)       // program header size
	le.PutUint16(b[56:], 2)            // program headers
	ph := b[ehsize:]
	le.PutUint32(ph[0:], ptLoad)
	le.PutUint32(ph[4:], pfR|pfX)
	le.PutUint64(ph[16:], base)           // vaddr
	le.PutUint64(ph[24:], base)           // paddr
	le.PutUint64(ph[32:], uint64(len(b))) // filesz
	le.PutUint64(ph[40:], uint64(len(b))) // memsz
	le.PutUint64(ph[48:], 0x1000)         // align
	ph = ph[phsize:]
	le.PutUint32(ph[0:], ptStack)
	le.PutUint32(ph[4:], pfR|pfW)
	le.PutUint64(ph[48:], 16)
	copy(b[codeOff:], code)
	return b
}
