package shim

import (
	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"google.golang.org/protobuf/proto"
)

// metrics puts the container's cgroup counters in the types containerd
// decodes (`ctr task metrics`, the CRI's stats): cgroup v1's on a host with
// v1 controllers (hybrid too), cgroup2's on a pure cgroup2 host, as runc's
// shim reports them.
func metrics(mode cgroups.Mode, s *cgroups.Stats) proto.Message {
	m, raw := &s.Memory, s.Memory.Raw
	if mode == cgroups.V2 {
		// cgroup2 counts CPU time in microseconds.
		const us = 1000
		return &v2.Metrics{
			Pids: &v2.PidsStat{Current: s.Pids.Current, Limit: s.Pids.Limit},
			CPU: &v2.CPUStat{UsageUsec: s.CPU.Usage.Total / us, UserUsec: s.CPU.Usage.User / us, SystemUsec: s.CPU.Usage.Kernel / us,
				NrPeriods: s.CPU.Throttling.Periods, NrThrottled: s.CPU.Throttling.ThrottledPeriods, ThrottledUsec: s.CPU.Throttling.ThrottledTime / us},
			Memory: &v2.MemoryStat{
				Anon: raw["anon"], File: raw["file"], KernelStack: raw["kernel_stack"], Slab: raw["slab"], Sock: raw["sock"],
				Shmem: raw["shmem"], FileMapped: raw["file_mapped"], FileDirty: raw["file_dirty"], FileWriteback: raw["file_writeback"],
				AnonThp: raw["anon_thp"], InactiveAnon: raw["inactive_anon"], ActiveAnon: raw["active_anon"],
				InactiveFile: raw["inactive_file"], ActiveFile: raw["active_file"], Unevictable: raw["unevictable"],
				SlabReclaimable: raw["slab_reclaimable"], SlabUnreclaimable: raw["slab_unreclaimable"],
				Pgfault: raw["pgfault"], Pgmajfault: raw["pgmajfault"],
				Usage: m.Usage.Usage, UsageLimit: m.Usage.Limit, MaxUsage: m.Usage.Max,
				SwapUsage: m.Swap.Usage - min(m.Swap.Usage, m.Usage.Usage), SwapLimit: m.Swap.Limit,
			},
			MemoryEvents: &v2.MemoryEvents{Low: m.Events.Low, High: m.Events.High, Max: m.Events.Max, Oom: m.Events.OOM,
				OomKill: m.Events.OOMKill, OomGroupKill: m.Events.OOMGroupKill},
		}
	}
	entry := func(e cgroups.MemoryEntry) *v1.MemoryEntry {
		return &v1.MemoryEntry{Limit: e.Limit, Usage: e.Usage, Max: e.Max, Failcnt: e.Failcnt}
	}
	b2u := func(b bool) uint64 {
		if b {
			return 1
		}
		return 0
	}
	return &v1.Metrics{
		Pids: &v1.PidsStat{Current: s.Pids.Current, Limit: s.Pids.Limit},
		CPU: &v1.CPUStat{
			Usage: &v1.CPUUsage{Total: s.CPU.Usage.Total, Kernel: s.CPU.Usage.Kernel, User: s.CPU.Usage.User, PerCPU: s.CPU.Usage.PerCPU},
			Throttling: &v1.Throttle{Periods: s.CPU.Throttling.Periods, ThrottledPeriods: s.CPU.Throttling.ThrottledPeriods,
				ThrottledTime: s.CPU.Throttling.ThrottledTime},
		},
		Memory: &v1.MemoryStat{
			Cache: m.Cache, RSS: raw["rss"], RSSHuge: raw["rss_huge"], MappedFile: raw["mapped_file"], Dirty: raw["dirty"],
			Writeback: raw["writeback"], PgPgIn: raw["pgpgin"], PgPgOut: raw["pgpgout"], PgFault: raw["pgfault"],
			PgMajFault: raw["pgmajfault"], InactiveAnon: raw["inactive_anon"], ActiveAnon: raw["active_anon"],
			InactiveFile: raw["inactive_file"], ActiveFile: raw["active_file"], Unevictable: raw["unevictable"],
			HierarchicalMemoryLimit: raw["hierarchical_memory_limit"], HierarchicalSwapLimit: raw["hierarchical_memsw_limit"],
			TotalCache: raw["total_cache"], TotalRSS: raw["total_rss"], TotalRSSHuge: raw["total_rss_huge"],
			TotalMappedFile: raw["total_mapped_file"], TotalDirty: raw["total_dirty"], TotalWriteback: raw["total_writeback"],
			TotalPgPgIn: raw["total_pgpgin"], TotalPgPgOut: raw["total_pgpgout"], TotalPgFault: raw["total_pgfault"],
			TotalPgMajFault: raw["total_pgmajfault"], TotalInactiveAnon: raw["total_inactive_anon"],
			TotalActiveAnon: raw["total_active_anon"], TotalInactiveFile: raw["total_inactive_file"],
			TotalActiveFile: raw["total_active_file"], TotalUnevictable: raw["total_unevictable"],
			Usage: entry(m.Usage), Swap: entry(m.Swap), Kernel: entry(m.Kernel),
		},
		MemoryOomControl: &v1.MemoryOomControl{OomKillDisable: b2u(m.Events.OOMKillDisable), UnderOom: b2u(m.Events.UnderOOM), OomKill: m.Events.OOMKill},
	}
}
