package seccomp

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mobyProfile is moby's seccomp profile format (profiles/seccomp/seccomp.go).
type mobyProfile struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet"`
	ArchMap         []struct {
		Arch      specs.Arch   `json:"architecture"`
		SubArches []specs.Arch `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		specs.LinuxSyscall
		Includes *mobyFilter `json:"includes"`
		Excludes *mobyFilter `json:"excludes"`
	} `json:"syscalls"`
}

type mobyFilter struct {
	Arches    []string `json:"arches"`
	Caps      []string `json:"caps"`
	MinKernel string   `json:"minKernel"`
}

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// mobyDefault turns testdata/moby-default.json into the linux.seccomp that
// moby's setupSeccomp gives a container on goarch with the capabilities caps
// on a kernel of version kernel ("6.18").
func mobyDefault(t testing.TB, goarch string, caps []string, kernel string) *specs.LinuxSeccomp {
	t.Helper()
	s, err := loadMoby(goarch, caps, kernel)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadMoby(goarch string, caps []string, kernel string) (*specs.LinuxSeccomp, error) {
	b, err := os.ReadFile("testdata/moby-default.json")
	if err != nil {
		return nil, err
	}
	var p mobyProfile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	native := map[string]specs.Arch{"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}[goarch]
	s := &specs.LinuxSeccomp{DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet}
	for _, m := range p.ArchMap {
		if m.Arch == native {
			s.Architectures = append(append(s.Architectures, m.Arch), m.SubArches...)
		}
	}
	kernelAtLeast := func(v string) bool { return versionLess(v, kernel) || v == kernel }
	for _, sc := range p.Syscalls {
		if x := sc.Excludes; x != nil {
			if slices.Contains(x.Arches, goarch) {
				continue
			}
			if slices.ContainsFunc(x.Caps, func(c string) bool { return slices.Contains(caps, c) }) {
				continue
			}
			if x.MinKernel != "" && kernelAtLeast(x.MinKernel) {
				continue
			}
		}
		if in := sc.Includes; in != nil {
			if len(in.Arches) > 0 && !slices.Contains(in.Arches, goarch) {
				continue
			}
			if !slices.ContainsFunc(in.Caps, func(c string) bool { return slices.Contains(caps, c) }) && len(in.Caps) > 0 {
				continue
			}
			if in.MinKernel != "" && !kernelAtLeast(in.MinKernel) {
				continue
			}
		}
		s.Syscalls = append(s.Syscalls, sc.LinuxSyscall)
	}
	return s, nil
}

// versionLess compares "major.minor" strings.
func versionLess(a, b string) bool {
	var am, an, bm, bn int
	parse := func(s string, m, n *int) {
		for i, p := 0, 0; i <= len(s); i++ {
			if i == len(s) || s[i] == '.' {
				if p == 0 {
					*m = atoi(s[:i])
				} else {
					*n = atoi(s[p:i])
				}
				p = i + 1
			}
		}
	}
	parse(a, &am, &an)
	parse(b, &bm, &bn)
	return am < bm || am == bm && an < bn
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestMobyDefault(t *testing.T) {
	s := mobyDefault(t, "amd64", dockerCaps, "6.18")
	f := mustCompile(t, s)
	t.Logf("Docker default profile, x86_64+x86+x32: %d rules, %d instructions, %d warnings", len(s.Syscalls), len(f.Program), len(f.Warnings))
	for _, w := range f.Warnings {
		t.Log("  ", w)
	}
	if len(f.Program) > 1500 {
		t.Errorf("%d instructions: the search tree grew", len(f.Program))
	}
	v := newVM(t, f, false)
	x64, x86, x32 := archX86_64, archX86, archX32
	const (
		cloneNewUser = unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)
		cloneThread  = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD |
			unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID
	)
	for _, tc := range []struct {
		a    *arch
		name string
		nr   uint32 // when name is ""
		args [6]uint64
		want uint32
	}{
		{a: x64, name: "read", want: retAllow},
		{a: x86, name: "read", want: retAllow},
		{a: x32, name: "read", want: retAllow},
		{a: x64, name: "mkdir", want: retAllow},
		{a: x64, name: "ptrace", want: retAllow}, // minKernel 4.8
		{a: x64, name: "mount", want: retEPERM},
		{a: x64, name: "unshare", want: retEPERM},
		{a: x64, name: "kexec_load", want: retEPERM},
		{a: x64, name: "open_by_handle_at", want: retEPERM},
		{a: x64, name: "chroot", want: retAllow}, // CAP_SYS_CHROOT
		{a: x64, name: "clone", args: [6]uint64{cloneThread}, want: retAllow},
		{a: x64, name: "clone", args: [6]uint64{cloneNewUser}, want: retEPERM},
		{a: x64, name: "clone", args: [6]uint64{1<<32 | cloneThread}, want: retAllow}, // the mask's high half is 0
		{a: x86, name: "clone", args: [6]uint64{cloneNewUser}, want: retEPERM},
		{a: x64, name: "clone3", want: retENOSYS}, // errnoRet 38 so glibc falls back to clone
		{a: x64, name: "socket", args: [6]uint64{unix.AF_INET}, want: retAllow},
		{a: x64, name: "socket", args: [6]uint64{unix.AF_VSOCK}, want: retEPERM},
		{a: x64, name: "socket", args: [6]uint64{1<<32 | unix.AF_VSOCK}, want: retAllow}, // 64-bit compare
		{a: x86, name: "socket", args: [6]uint64{1<<32 | unix.AF_VSOCK}, want: retEPERM}, // 32-bit compare
		{a: x86, name: "socketcall", args: [6]uint64{1}, want: retAllow},
		{a: x64, name: "personality", args: [6]uint64{0xffffffff}, want: retAllow},
		{a: x64, name: "personality", args: [6]uint64{8}, want: retAllow},
		{a: x64, name: "personality", args: [6]uint64{1}, want: retEPERM},
		{a: x64, name: "personality", args: [6]uint64{0xffffffffffffffff}, want: retEPERM},
		{a: x86, name: "personality", args: [6]uint64{0xffffffffffffffff}, want: retAllow},
		{a: x64, name: "arch_prctl", want: retAllow},
		{a: x64, name: "futex_waitv", want: retAllow},              // 449, the highest named
		{a: x64, name: "set_mempolicy_home_node", want: retENOSYS}, // 450: only with CAP_SYS_NICE
		{a: x64, name: "cachestat", want: retENOSYS},
		{a: x64, name: "fchmodat2", want: retENOSYS},
		{a: x64, nr: 1000, want: retENOSYS},
		{a: x86, nr: 1000, want: retENOSYS},
		{a: x32, nr: x32SyscallBit + 1000, want: retENOSYS},
		{a: x64, nr: 0xffffffff, want: retENOSYS},      // bit 30 set: an x32 number, above x32's highest
		{a: x64, name: "uretprobe", want: retEPERM},    // 335: a hole below the highest
		{a: x32, name: "rt_sigaction", want: retAllow}, // 512
		{a: x32, name: "kexec_load", want: retEPERM},   // 528
		{a: archAArch64, nr: 63, want: retKillThread},
	} {
		c := call{arch: tc.a.audit, nr: tc.nr, args: tc.args}
		if tc.name != "" {
			c.nr = nr(t, tc.a, tc.name)
		}
		if got := v.run(c); got != tc.want {
			t.Errorf("%s %s %v: %s, want %s", tc.a.name, tc.name, c, actionString(got), actionString(tc.want))
		}
		if m := model(s, x64, c); m != tc.want {
			t.Errorf("model: %s %s %v: %s, want %s", tc.a.name, tc.name, c, actionString(m), actionString(tc.want))
		}
	}

	// Every number of every arch against the model, and the longest path.
	worst := 0
	for _, a := range []*arch{x64, x86, x32} {
		base := uint32(0)
		if a.x32 {
			base = x32SyscallBit
		}
		for n := base; n < base+1100; n++ {
			for _, args := range [][6]uint64{{}, {cloneNewUser}, {0xffffffff}, {unix.AF_VSOCK}} {
				c := call{arch: a.audit, nr: n, args: args}
				if got, want := v.run(c), model(s, x64, c); got != want {
					t.Fatalf("%s %v: %s, want %s", a.name, c, actionString(got), actionString(want))
				}
				if k, _ := steps(f.Program, c); k > worst {
					worst = k
				}
			}
		}
	}

	t.Logf("at most %d instructions executed per call", worst)
	if worst > 40 {
		t.Errorf("a call runs %d instructions", worst)
	}

	// With more capabilities and an old kernel.
	s = mobyDefault(t, "amd64", append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN", "CAP_SYS_NICE"), "4.4")
	v = newVM(t, mustCompile(t, s), false)
	for name, want := range map[string]uint32{
		"mount": retAllow, "clone3": retAllow, "ptrace": retEPERM, "set_mempolicy_home_node": retAllow,
		"cachestat": retENOSYS,
	} {
		if got := v.run(call{arch: x64.audit, nr: nr(t, x64, name)}); got != want {
			t.Errorf("CAP_SYS_ADMIN, 4.4: %s: %s, want %s", name, actionString(got), actionString(want))
		}
	}
	if got := v.run(call{arch: x64.audit, nr: nr(t, x64, "clone"), args: [6]uint64{cloneNewUser}}); got != retAllow {
		t.Errorf("CAP_SYS_ADMIN: clone(CLONE_NEWUSER): %s", actionString(got))
	}
}

// TestMobyDefaultSizes records the size of the Docker profile's program for
// the configurations Docker uses.
func TestMobyDefaultSizes(t *testing.T) {
	for _, tc := range []struct {
		goarch string
		native *arch
		caps   []string
	}{
		{"amd64", archX86_64, dockerCaps},
		{"amd64", archX86_64, append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")},
		{"arm64", archAArch64, dockerCaps},
	} {
		s := mobyDefault(t, tc.goarch, tc.caps, "6.18")
		f, err := compile(s, tc.native, false)
		if err != nil {
			t.Fatal(err)
		}
		per := map[string]int{}
		for _, a := range append([]specs.Arch{specs.Arch(tc.native.name)}, s.Architectures...) {
			one := *s
			one.Architectures = []specs.Arch{a}
			if ar := archByName(string(a)); ar != nil && (ar != tc.native || len(per) == 0) {
				fa, err := compile(&one, tc.native, false)
				if err != nil {
					t.Fatal(err)
				}
				per[string(a)] = len(fa.Program)
			}
		}
		t.Logf("%s %d caps: %d rules, %d instructions (with the native arch alone plus each: %v)",
			tc.goarch, len(tc.caps), len(s.Syscalls), len(f.Program), per)
		if len(f.Program) > MaxInsns/2 {
			t.Errorf("%d instructions", len(f.Program))
		}
	}
}

func BenchmarkCompileMobyDefault(b *testing.B) {
	s := mobyDefault(b, "amd64", dockerCaps, "6.18")
	for b.Loop() {
		if _, err := compile(s, archX86_64, false); err != nil {
			b.Fatal(err)
		}
	}
}
