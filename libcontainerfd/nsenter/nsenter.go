// Package nsenter runs a function on an OS thread that has joined a set of
// namespaces, without moving the rest of the process.
//
// Linux namespaces (and credentials, such as the session keyring) belong to
// threads. Go moves goroutines between threads, so the work runs on a fresh
// goroutine locked to its thread, and that thread is thrown away afterwards
// (the goroutine exits still locked), so no other goroutine ever runs in the
// joined namespaces.
package nsenter

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Namespace is one namespace to join: an fd (nsfs or pidfd) and the
// CLONE_NEW* flags to pass to setns(2). With a pidfd, Type may hold several
// flags at once.
type Namespace struct {
	FD   int
	Type int
}

// Do runs fn on a thread that has joined every namespace in nss, in order.
// Joining a mount namespace unshares the thread's filesystem information
// first, as setns(2) requires. A user namespace cannot be joined from a
// multithreaded process; use a single-threaded child for that.
func Do(nss []Namespace, fn func() error) error {
	errc := make(chan error, 1)
	Throwaway(func() { errc <- enterAndRun(nss, fn) })
	return <-errc
}

// Throwaway runs fn on a goroutine locked to an OS thread that exits when fn
// returns, so whatever fn changes on the thread (namespaces, credentials,
// keyrings) dies with it. It never uses the main thread, which Go parks
// instead of ending: what it joined would stay referenced for the life of
// the process.
func Throwaway(fn func()) {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if unix.Gettid() == unix.Getpid() {
			// Hold the main thread until another one is locked.
			locked := make(chan struct{})
			go func() {
				runtime.LockOSThread()
				close(locked)
				fn()
			}()
			<-locked
			runtime.UnlockOSThread()
			return
		}
		fn()
	}()
}

func enterAndRun(nss []Namespace, fn func() error) error {
	for _, ns := range nss {
		if ns.Type&unix.CLONE_NEWUSER != 0 {
			return fmt.Errorf("nsenter: cannot join a user namespace from a multithreaded process")
		}
		if ns.Type&unix.CLONE_NEWNS != 0 {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("nsenter: unshare filesystem info: %w", err)
			}
		}
		if err := unix.Setns(ns.FD, ns.Type); err != nil {
			return fmt.Errorf("nsenter: setns %s: %w", TypeName(ns.Type), err)
		}
	}
	return fn()
}

// Types lists every namespace type with its name in /proc/<pid>/ns, in the
// order they must be joined: the user namespace first, so the others are
// joined with its privileges.
var Types = []struct {
	Flag int
	Name string
}{
	{unix.CLONE_NEWUSER, "user"},
	{unix.CLONE_NEWNS, "mnt"},
	{unix.CLONE_NEWPID, "pid"},
	{unix.CLONE_NEWNET, "net"},
	{unix.CLONE_NEWIPC, "ipc"},
	{unix.CLONE_NEWUTS, "uts"},
	{unix.CLONE_NEWCGROUP, "cgroup"},
	{unix.CLONE_NEWTIME, "time"},
}

// TypeName names the namespaces in a set of CLONE_NEW* flags the way
// /proc/<pid>/ns does ("net", "mnt+pid").
func TypeName(flags int) string {
	s := ""
	for _, n := range Types {
		if flags&n.Flag != 0 {
			if s != "" {
				s += "+"
			}
			s += n.Name
		}
	}
	if s == "" {
		return fmt.Sprintf("namespace(%#x)", flags)
	}
	return s
}
