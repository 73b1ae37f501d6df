package libcontainerfd

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// moveNetDevices moves host network interfaces into the container's new
// network namespace, renamed where asked, with their addresses (which a
// move drops), as linux.netDevices asks.
func (c *Container) moveNetDevices(pid int) error {
	if len(c.cfg.NetDevices) == 0 {
		return nil
	}
	nsfd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: net devices: %w", c.id, err)
	}
	defer unix.Close(nsfd)
	host, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("container %s: net devices: %w", c.id, err)
	}
	defer unix.Close(host)
	inside, err := c.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(inside)
	addrs, err := hostAddrs()
	if err != nil {
		return fmt.Errorf("container %s: net devices: host addresses: %w", c.id, err)
	}
	for from, to := range c.cfg.NetDevices {
		if to == "" {
			to = from
		}
		index, err := ifindex(host, from)
		if err != nil {
			return fmt.Errorf("container %s: net device %s: %w", c.id, from, err)
		}
		// The kernel renames after the move: a name taken inside would
		// fail with the device already moved.
		if !strings.Contains(to, "%") {
			if _, err := c.ifindexInside(to); err == nil {
				return fmt.Errorf("container %s: net device %s: %s already exists in the container", c.id, from, to)
			}
		}
		// RTM_NEWLINK with IFLA_NET_NS_FD moves it; IFLA_IFNAME names it
		// in its new namespace.
		body := ifinfomsg(index)
		body = rtattr(body, unix.IFLA_NET_NS_FD, u32(uint32(nsfd)))
		body = rtattr(body, unix.IFLA_IFNAME, append([]byte(to), 0))
		if err := netlinkDo(host, unix.RTM_NEWLINK, 0, body); err != nil {
			return fmt.Errorf("container %s: move net device %s to %s: %w", c.id, from, to, err)
		}
		// A move keeps the index unless the container's namespace has it
		// taken (a new namespace holds only lo and the devices moved
		// before, whose host indexes differ); the name may be a kernel
		// template ("eth%d"), so the index is what finds it.
		idx := index
		if err := netlinkDo(inside, unix.RTM_GETLINK, 0, ifinfomsg(idx)); err != nil {
			if idx, err = c.ifindexInside(to); err != nil {
				return fmt.Errorf("container %s: net device %s: find it after the move: %w", c.id, to, err)
			}
		}
		for _, a := range addrs[index] {
			if err := addrAdd(inside, idx, a); err != nil {
				return fmt.Errorf("container %s: net device %s: address %s: %w", c.id, to, a, err)
			}
		}
		// The spec asks for the device up once moved.
		up := ifinfomsg(idx)
		binary.NativeEndian.PutUint32(up[8:], unix.IFF_UP)  // ifi_flags
		binary.NativeEndian.PutUint32(up[12:], unix.IFF_UP) // ifi_change
		if err := netlinkDo(inside, unix.RTM_NEWLINK, 0, up); err != nil {
			return fmt.Errorf("container %s: net device %s: set up: %w", c.id, to, err)
		}
	}
	return nil
}

// ifindexInside is the index of the interface called name in the
// container's network namespace.
func (c *Container) ifindexInside(name string) (int, error) {
	fd, err := c.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return ifindex(fd, name)
}

// ifindex is the index of the interface called name in the network
// namespace of the socket fd.
func ifindex(fd int, name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}

// ifaddr is one address of an interface: the net package would do, but
// it makes a cgo build dynamic, and the runtime binary runs inside
// containers that have no loader.
type ifaddr struct {
	family int
	prefix uint8
	ip     []byte
}

// hostAddrs lists, by interface index, the host addresses that a move must
// keep: the spec's permanent ones of global scope.
func hostAddrs() (map[int][]ifaddr, error) {
	rib, err := syscall.NetlinkRIB(unix.RTM_GETADDR, unix.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, err
	}
	out := map[int][]ifaddr{}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, err
		}
		// struct ifaddrmsg: family, prefixlen, flags, scope, index;
		// IFA_FLAGS, when present, holds all the flags.
		flags := uint32(m.Data[2])
		if m.Data[3] != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		a := ifaddr{family: int(m.Data[0]), prefix: m.Data[1]}
		for _, at := range attrs {
			if at.Attr.Type == unix.IFA_FLAGS && len(at.Value) == 4 {
				flags = binary.NativeEndian.Uint32(at.Value)
			}
			// IFA_LOCAL is the address on a point-to-point link;
			// IFA_ADDRESS elsewhere.
			if at.Attr.Type == unix.IFA_LOCAL || (at.Attr.Type == unix.IFA_ADDRESS && a.ip == nil) {
				a.ip = at.Value
			}
		}
		if a.ip != nil && flags&unix.IFA_F_PERMANENT != 0 {
			index := int(binary.NativeEndian.Uint32(m.Data[4:]))
			out[index] = append(out[index], a)
		}
	}
	return out, nil
}

func (a ifaddr) String() string {
	ip, _ := netip.AddrFromSlice(a.ip)
	return netip.PrefixFrom(ip, int(a.prefix)).String()
}

func addrAdd(fd, index int, a ifaddr) error {
	// struct ifaddrmsg: family, prefixlen, flags, scope, index.
	body := []byte{byte(a.family), a.prefix, 0, 0}
	body = append(body, u32(uint32(index))...)
	body = rtattr(body, unix.IFA_LOCAL, a.ip)
	body = rtattr(body, unix.IFA_ADDRESS, a.ip)
	return netlinkDo(fd, unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)
}

// ifinfomsg is a struct ifinfomsg for the interface index.
func ifinfomsg(index int) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// rtattr appends a route attribute, padded to four bytes.
func rtattr(b []byte, typ uint16, data []byte) []byte {
	n := unix.SizeofRtAttr + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

var netlinkSeq atomic.Uint32

// netlinkDo sends one request with an ACK asked for and waits for the
// kernel's answer to it, passing over what comes before (a GET's reply
// comes ahead of its ACK).
func netlinkDo(fd int, typ, flags uint16, body []byte) error {
	seq := netlinkSeq.Add(1)
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type == syscall.NLMSG_ERROR && m.Header.Seq == seq && len(m.Data) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
					return unix.Errno(-e)
				}
				return nil
			}
		}
	}
}
