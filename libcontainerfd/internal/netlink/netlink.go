// Package netlink speaks the little of rtnetlink (NETLINK_ROUTE) that
// moving a network interface into a container takes: find a link, move it
// to another network namespace under a new name, list and add addresses,
// set it up. The net package would do some of it, but it makes a cgo build
// dynamic, and the runtime binary runs inside containers that have no
// loader.
package netlink

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Conn is a NETLINK_ROUTE socket; it acts on the network namespace the
// socket was made in.
type Conn struct{ fd int }

// Open makes a Conn in the calling thread's network namespace.
func Open() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	return &Conn{fd}, nil
}

// NewConn takes fd, a NETLINK_ROUTE socket made elsewhere (in another
// network namespace); Close closes it.
func NewConn(fd int) *Conn { return &Conn{fd} }

func (c *Conn) Close() error { return unix.Close(c.fd) }

// LinkIndex is the index of the interface called name.
func (c *Conn) LinkIndex(name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(c.fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}

// HasLink asks whether an interface has the index.
func (c *Conn) HasLink(index int) bool {
	return c.do(unix.RTM_GETLINK, 0, ifinfomsg(index)) == nil
}

// MoveLink moves the interface to the network namespace of nsfd and calls
// it name there; name may be a kernel template ("eth%d"). The kernel
// renames after the move: a name taken in the namespace fails the move.
func (c *Conn) MoveLink(index, nsfd int, name string) error {
	body := ifinfomsg(index)
	body = rtattr(body, unix.IFLA_NET_NS_FD, u32(uint32(nsfd)))
	body = rtattr(body, unix.IFLA_IFNAME, append([]byte(name), 0))
	return c.do(unix.RTM_NEWLINK, 0, body)
}

// SetUp sets the interface up.
func (c *Conn) SetUp(index int) error {
	up := ifinfomsg(index)
	binary.NativeEndian.PutUint32(up[8:], unix.IFF_UP)  // ifi_flags
	binary.NativeEndian.PutUint32(up[12:], unix.IFF_UP) // ifi_change
	return c.do(unix.RTM_NEWLINK, 0, up)
}

// AddAddr gives the interface the address a.
func (c *Conn) AddAddr(index int, a netip.Prefix) error {
	family := unix.AF_INET6
	if a.Addr().Is4() {
		family = unix.AF_INET
	}
	ip := a.Addr().AsSlice()
	// struct ifaddrmsg: family, prefixlen, flags, scope, index.
	body := []byte{byte(family), byte(a.Bits()), 0, 0}
	body = append(body, u32(uint32(index))...)
	body = rtattr(body, unix.IFA_LOCAL, ip)
	body = rtattr(body, unix.IFA_ADDRESS, ip)
	return c.do(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)
}

// PermanentAddrs lists, by interface index, the permanent addresses of
// global scope in the calling thread's network namespace: those a move to
// another namespace drops and the spec keeps.
func PermanentAddrs() (map[int][]netip.Prefix, error) {
	rib, err := syscall.NetlinkRIB(unix.RTM_GETADDR, unix.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, err
	}
	out := map[int][]netip.Prefix{}
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
		var ip []byte
		for _, at := range attrs {
			if at.Attr.Type == unix.IFA_FLAGS && len(at.Value) == 4 {
				flags = binary.NativeEndian.Uint32(at.Value)
			}
			// IFA_LOCAL is the address on a point-to-point link;
			// IFA_ADDRESS elsewhere.
			if at.Attr.Type == unix.IFA_LOCAL || (at.Attr.Type == unix.IFA_ADDRESS && ip == nil) {
				ip = at.Value
			}
		}
		addr, ok := netip.AddrFromSlice(ip)
		if ok && flags&unix.IFA_F_PERMANENT != 0 {
			index := int(binary.NativeEndian.Uint32(m.Data[4:]))
			out[index] = append(out[index], netip.PrefixFrom(addr, int(m.Data[1])))
		}
	}
	return out, nil
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

var seq atomic.Uint32

// do sends one request with an ACK asked for and waits for the kernel's
// answer to it, passing over what comes before (a GET's reply comes ahead
// of its ACK).
func (c *Conn) do(typ, flags uint16, body []byte) error {
	seq := seq.Add(1)
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	msg = append(msg, body...)
	if err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
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
