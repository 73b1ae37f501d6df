package libcontainerfd

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/internal/netlink"
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
	host, err := netlink.Open()
	if err != nil {
		return fmt.Errorf("container %s: net devices: %w", c.id, err)
	}
	defer host.Close()
	fd, err := c.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	inside := netlink.NewConn(fd)
	defer inside.Close()
	addrs, err := netlink.PermanentAddrs()
	if err != nil {
		return fmt.Errorf("container %s: net devices: host addresses: %w", c.id, err)
	}
	for from, to := range c.cfg.NetDevices {
		if to == "" {
			to = from
		}
		index, err := host.LinkIndex(from)
		if err != nil {
			return fmt.Errorf("container %s: net device %s: %w", c.id, from, err)
		}
		// The kernel renames after the move: a name taken inside would
		// fail with the device already moved.
		if !strings.Contains(to, "%") {
			if _, err := inside.LinkIndex(to); err == nil {
				return fmt.Errorf("container %s: net device %s: %s already exists in the container", c.id, from, to)
			}
		}
		if err := host.MoveLink(index, nsfd, to); err != nil {
			return fmt.Errorf("container %s: move net device %s to %s: %w", c.id, from, to, err)
		}
		// A move keeps the index unless the container's namespace has it
		// taken (a new namespace holds only lo and the devices moved
		// before, whose host indexes differ); the name may be a kernel
		// template ("eth%d"), so the index is what finds it.
		idx := index
		if !inside.HasLink(idx) {
			if idx, err = inside.LinkIndex(to); err != nil {
				return fmt.Errorf("container %s: net device %s: find it after the move: %w", c.id, to, err)
			}
		}
		for _, a := range addrs[index] {
			if err := inside.AddAddr(idx, a); err != nil {
				return fmt.Errorf("container %s: net device %s: address %s: %w", c.id, to, a, err)
			}
		}
		// The spec asks for the device up once moved.
		if err := inside.SetUp(idx); err != nil {
			return fmt.Errorf("container %s: net device %s: set up: %w", c.id, to, err)
		}
	}
	return nil
}
