package libcontainerfd

// CgroupsMode is how CRIU handles the container's cgroups (runc's
// --manage-cgroups-mode): "soft" (the default), "full", "strict" or
// "ignore".
type CgroupsMode string

// CheckpointOpts say how Checkpoint dumps a container; they are runc's
// checkpoint flags.
type CheckpointOpts struct {
	// Config is the container's configuration as Create had it (a runtime
	// derives it again from its bundle): its mounts, masked paths and
	// joined namespaces are what CRIU is told is outside the container.
	Config *Config
	// ImagePath is where CRIU writes its images (made if missing);
	// WorkPath its log (dump.log) and work files, ImagePath if empty.
	ImagePath, WorkPath string
	// ParentPath is a pre-dump's images, relative to ImagePath or
	// absolute: the dump then writes only the pages changed since.
	ParentPath string
	// PreDump dumps memory only and leaves the container running.
	PreDump bool
	// LeaveRunning keeps the container running after the dump; without
	// it, CRIU kills the container's processes once they are dumped.
	LeaveRunning    bool
	TCPEstablished  bool
	TCPSkipInFlight bool
	LinkRemap       bool
	ExtUnixSk       bool
	ShellJob        bool
	FileLocks       bool
	AutoDedup       bool
	// LazyPages leaves the memory to be fetched by a lazy-pages daemon
	// at restore (userfaultfd); StatusFD, if >= 0, is an fd of ours CRIU
	// writes a \0 to once it is ready for that.
	LazyPages bool
	StatusFD  int
	// PageServer, "address:port", sends the pages to a CRIU page server.
	PageServer  string
	CgroupsMode CgroupsMode
	// EmptyNS holds CLONE_NEW* flags of namespaces CRIU makes empty at
	// restore instead of restoring their contents (runc's --empty-ns).
	EmptyNS int
}

// RestoreOpts say how Restore brings a container back from CRIU's images;
// they are runc's restore flags.
type RestoreOpts struct {
	// ImagePath holds the images; WorkPath gets restore.log, ImagePath if
	// empty.
	ImagePath, WorkPath string
	TCPEstablished      bool
	ExtUnixSk           bool
	ShellJob            bool
	FileLocks           bool
	AutoDedup           bool
	LazyPages           bool
	CgroupsMode         CgroupsMode
	EmptyNS             int
	// LSMProfile ("apparmor:NAME", "selinux:LABEL") and LSMMountContext
	// replace the ones in the images.
	LSMProfile, LSMMountContext string
}
