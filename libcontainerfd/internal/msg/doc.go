// Package msg holds every message that crosses between the runtime and the
// processes it starts, and the wire they travel on: the typed messages, the
// stages' argv, the fds each carries, and their readers and writers. The
// raw child's own records (spawn.StepRecord, spawn.Gate) are package spawn's,
// which writes them with raw system calls; their readers are here.
//
// # Init, started directly (spawn.Gate)
//
//	runtime (ForkInit)                          init (the raw child)
//	  spawn.Start: clone3 ──────────────────▶ joins namespaces, makes proc
//	                                            (Gate.Mount) where needed
//	  RecvMount ◀──────────────────────────── the proc mount (SCM_RIGHTS)
//	  rootfs.Open, rootfs.Setup (a thread
//	  in init's namespaces), SetNames,
//	  LookPath, HOME, the pty
//	  SendGo: path [+ HOME] [+ pty peer] ────▶ waits on the start listener
//	runtime (Start)
//	  connect, SendJSON(StartOrder) ──────────▶ compares Gate.Order, takes
//	                                            on the identity, execs
//	  ReadStepRecord ◀──────────────────────── EOF (exec'd) or a StepRecord
//	  (ChildError words it with the state's StepWords)
//
// # Init, started through the stage (StageInit)
//
//	runtime (ForkInit)                          stage (runInit)
//	  spawn.Start: clone3, execveat(self) ───▶ joins the memory cgroup
//	  SendJSON(Init) ─────────────────────────▶ RecvJSON
//	  SendFDs(listener, plan's fds) ──────────▶ RecvFDs, rootfs.Place
//	                                            rootfs.Setup
//	  ReadReplies ◀── Reply{Mounted} ───────── (WaitBeforePivot)
//	  "pivot" ────────────────────────────────▶ pivot_root
//	              ◀── Reply{Console}+master ── (Terminal)
//	              ◀── Reply{Ready} ─────────── waits on the start listener
//
// Without a mount namespace of the container's own, the runtime builds the
// tree itself, on the rootfs in its mount namespace (rootfs.SetupAt), and
// runs the hooks; Init says Chroot and the fds are the listener and the
// tree's root, which the stage chroots into instead of rootfs.Setup.
//
//	runtime (Start)
//	  connect, SendJSON(StartOrder) ──────────▶ execProcess: spawn.Steps
//	  ReadReplies ◀── Reply{Seccomp}+listener ─ (a notify filter)
//	  "ok" ───────────────────────────────────▶ execs
//	              ◀── EOF, or Reply{Error, Step, Errno}
//
// # Exec through the stage (StageExec)
//
//	runtime (Exec)                              stage (runExec)
//	  SendJSON(Process), SendFD(root) ────────▶ chroot, LookPath, the pty
//	  ReadReplies ◀── Console, Seccomp, as init's; then EOF or an error
//
// A direct exec gets everything at the clone (spawn.Attr) and answers only
// with a StepRecord on its report pipe, or by exec'ing.
//
// # Messages
//
//	message            from → to           carried            fds attached
//	Init               runtime → init      JSON               then SendFDs: the start
//	                                                          listener, rootfs.FDs.List
//	                                                          (Chroot: the root)
//	Process            runtime → exec      JSON               then SendFD: the root
//	Reply              stage → runtime     JSON               Console: pty master;
//	                                                          Seccomp: the listener
//	"pivot", "ok"      runtime → stage     JSON string        none
//	StartOrder         start → init        JSON string        none
//	SendGo             runtime → direct    the path's bytes   the pty peer
//	                                       [NUL, HOME=…]
//	                   init
//	RecvMount          direct init →       one byte           the proc mount
//	                   runtime
//	spawn.StepRecord   raw child →         8 bytes            none
//	                   runtime
package msg
