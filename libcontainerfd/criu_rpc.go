//go:build !containerfd_nocriu

package libcontainerfd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"github.com/containerfd/containerfd/internal/mountinfo"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// criuRun is one `criu swrk` process, which takes CRIU's RPC requests on a
// SOCK_SEQPACKET socket (fd 3 in it), as runc drives CRIU.
type criuRun struct {
	cmd  *exec.Cmd
	conn int // our end of the socket
	// logPath is CRIU's log, quoted in errors.
	logPath string
}

// startCRIU starts `criu swrk 3` with extra as its fds 4, 5, … and stdio as
// its 0-2 (nil: /dev/null). onThread, if set, runs first on the thread that
// forks CRIU, which is then thrown away: what it changes there (a session
// keyring, a mount namespace) is CRIU's and what CRIU restores.
func startCRIU(extra []*os.File, stdio [3]*os.File, onThread func() error) (*criuRun, error) {
	path, err := exec.LookPath(criuBinary)
	if err != nil {
		return nil, fmt.Errorf("criu: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("criu: socketpair: %w", err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "criu swrk socket")
	defer theirs.Close()
	cmd := exec.Command(path, "swrk", "3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	cmd.ExtraFiles = append([]*os.File{theirs}, extra...)
	errc := make(chan error, 1)
	nsenter.Throwaway(func() {
		if onThread != nil {
			if err := onThread(); err != nil {
				errc <- err
				return
			}
		}
		errc <- cmd.Start()
	})
	if err := <-errc; err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("criu: start: %w", err)
	}
	return &criuRun{cmd: cmd, conn: fds[0]}, nil
}

// extraFD is the fd number CRIU has extra[i] at (startCRIU): for what CRIU
// uses itself (inherit_fd).
func extraFD(i int) int32 { return int32(4 + i) }

// ourFD is f's number in our process: CRIU opens the image and work
// directories, and the status fd, through /proc/<peer>/fd of the process
// at the other end of its socket, which is us.
func ourFD(f *os.File) *int32 { return proto.Int32(int32(f.Fd())) }

// call sends req and returns CRIU's answer. Notifications in between go to
// notify (with the fd CRIU sent along, or -1), whose error CRIU is told and
// the call returns.
func (r *criuRun) call(req *rpc.CriuReq, notify func(script string, n *rpc.CriuNotify, fd int) error) (*rpc.CriuResp, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("criu: encode request: %w", err)
	}
	if _, err := unix.Write(r.conn, b); err != nil {
		return nil, r.failed(r.exited(fmt.Errorf("send request: %w", err)))
	}
	buf := make([]byte, 10*4096)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(r.conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, r.failed(r.exited(fmt.Errorf("read answer: %w", err)))
		}
		if n == 0 {
			return nil, r.failed(r.exited(nil))
		}
		fd := -1
		if oobn > 0 {
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
				if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
					fd = fds[0]
				}
			}
		}
		resp := &rpc.CriuResp{}
		if err := proto.Unmarshal(buf[:n], resp); err != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("criu: decode answer: %w", err)
		}
		if resp.GetType() != rpc.CriuReqType_NOTIFY {
			if fd >= 0 {
				unix.Close(fd)
			}
			if !resp.GetSuccess() {
				err := fmt.Errorf("criu %s failed", strings.ToLower(req.GetType().String()))
				if why := criuReason(resp); why != "" {
					err = fmt.Errorf("%w: %s", err, why)
				}
				return nil, r.failed(err)
			}
			if resp.GetType() != req.GetType() {
				return nil, fmt.Errorf("criu: answer %s to request %s", resp.GetType(), req.GetType())
			}
			return resp, nil
		}
		var nerr error
		if notify != nil {
			nerr = notify(resp.GetNotify().GetScript(), resp.GetNotify(), fd)
		} else if fd >= 0 {
			unix.Close(fd)
		}
		ack, err := proto.Marshal(&rpc.CriuReq{Type: rpc.CriuReqType_NOTIFY.Enum(), NotifySuccess: proto.Bool(nerr == nil)})
		if err == nil {
			_, err = unix.Write(r.conn, ack)
		}
		if nerr != nil {
			return nil, nerr
		}
		if err != nil {
			return nil, fmt.Errorf("criu: answer notification %s: %w", resp.GetNotify().GetScript(), err)
		}
	}
}

func criuReason(resp *rpc.CriuResp) string {
	var parts []string
	if m := resp.GetCrErrmsg(); m != "" {
		parts = append(parts, m)
	}
	if e := resp.GetCrErrno(); e != 0 {
		parts = append(parts, unix.Errno(e).Error())
	}
	return strings.Join(parts, ": ")
}

// exited words a CRIU that went away in the middle of a call (why is what
// we saw of it, if anything) with how it ended.
func (r *criuRun) exited(why error) error {
	unix.Close(r.conn)
	r.conn = -1
	how := "criu exited without an answer"
	if err := r.cmd.Wait(); err != nil {
		how += " (" + err.Error() + ")"
	}
	if why != nil {
		return fmt.Errorf("%s: %w", how, why)
	}
	return errors.New(how)
}

// failed adds the Error lines of CRIU's log to err: what CRIU says went
// wrong is there, not in its answer.
func (r *criuRun) failed(err error) error {
	if r.logPath == "" {
		return err
	}
	b, rerr := os.ReadFile(r.logPath)
	if rerr != nil {
		// CRIU stopped before its log: where it cannot work here at all
		// (a kernel newer than it knows), `criu check` says why.
		if _, cerr := CRIUStatus(); cerr != nil {
			return fmt.Errorf("%w: %w", err, cerr)
		}
		return fmt.Errorf("%w (log %s: %w)", err, r.logPath, rerr)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// "(00.012345) Error (criu/mount.c:1234): mnt: ..."
		if _, rest, ok := strings.Cut(sc.Text(), ") Error ("); ok {
			lines = append(lines, "Error ("+rest)
		}
	}
	const keep = 5
	if len(lines) > keep {
		lines = lines[len(lines)-keep:]
	}
	if len(lines) == 0 {
		return fmt.Errorf("%w (see %s)", err, r.logPath)
	}
	return fmt.Errorf("%w: %s (see %s)", err, strings.Join(lines, "; "), r.logPath)
}

// close ends the session: CRIU exits once its socket closes. It may be
// called again (by a kill after it), and then does nothing.
func (r *criuRun) close() error {
	if r.conn < 0 {
		return nil
	}
	unix.Close(r.conn)
	r.conn = -1
	if err := r.cmd.Wait(); err != nil {
		return fmt.Errorf("criu: %w", err)
	}
	return nil
}

// kill ends CRIU now, for a session given up.
func (r *criuRun) kill() {
	if r.conn >= 0 {
		r.cmd.Process.Kill()
		r.close()
	}
}

// criuFeatures asks CRIU whether it can do what want asks; the error names
// what it cannot.
func criuFeatures(want *rpc.CriuFeatures, what string) error {
	r, err := startCRIU(nil, [3]*os.File{}, nil)
	if err != nil {
		return err
	}
	defer r.close()
	resp, err := r.call(&rpc.CriuReq{Type: rpc.CriuReqType_FEATURE_CHECK.Enum(), Features: want}, nil)
	if err != nil {
		return err
	}
	got := resp.GetFeatures()
	if want.GetMemTrack() && !got.GetMemTrack() || want.GetLazyPages() && !got.GetLazyPages() {
		return fmt.Errorf("%s: CRIU cannot do it on this kernel", what)
	}
	return nil
}

// openDir makes dir if needed (as runc does for the image and work paths)
// and opens it for CRIU.
func openDir(dir string, create bool) (*os.File, error) {
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: abs, Err: err}
	}
	return os.NewFile(uintptr(fd), abs), nil
}

// keepCgroup2Options notes the options of the cgroup2 hierarchy
// (nsdelegate, memory_recursiveprot, …) and returns what puts them back.
// CRIU 3.17 mounts cgroup2 without them to read the container's cgroups,
// and a cgroup2 mount applies its options to the one hierarchy there is: a
// dump or restore would take nsdelegate off the host's.
func keepCgroup2Options() func() error {
	mp, before := cgroup2Options()
	return func() error {
		if mp == "" {
			return nil
		}
		if _, now := cgroup2Options(); now == before {
			return nil
		}
		fd, err := unix.Fspick(unix.AT_FDCWD, mp, unix.FSPICK_CLOEXEC)
		if err != nil {
			return fmt.Errorf("cgroup2 options %q, changed by CRIU: fspick %s: %w", before, mp, err)
		}
		defer unix.Close(fd)
		for _, o := range strings.Split(before, ",") {
			if o == "" {
				continue
			}
			if err := unix.FsconfigSetFlag(fd, o); err != nil {
				return fmt.Errorf("cgroup2 options %q, changed by CRIU: %s: %w", before, o, err)
			}
		}
		if err := unix.FsconfigReconfigure(fd); err != nil {
			return fmt.Errorf("cgroup2 options %q, changed by CRIU: reconfigure: %w", before, err)
		}
		return nil
	}
}

// cgroup2Options returns where cgroup2 is mounted and its options but rw.
func cgroup2Options() (mountpoint, options string) {
	ms, err := mountinfo.Read("/proc/self/mountinfo")
	if err != nil {
		return "", ""
	}
	for _, m := range ms {
		if m.FSType != "cgroup2" {
			continue
		}
		var opts []string
		for _, o := range strings.Split(m.SuperOptions, ",") {
			if o != "rw" && o != "ro" {
				opts = append(opts, o)
			}
		}
		return m.Mountpoint, strings.Join(opts, ",")
	}
	return "", ""
}
