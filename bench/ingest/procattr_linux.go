package main

import "syscall"

// childProcAttr makes the kernel kill the oncall subprocess if this
// process dies without stopping it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
