package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// procStat is what this program reads from /proc/PID/stat.
type procStat struct {
	ppid int
	cpu  time.Duration // user + system, all threads
}

// readStat reads /proc/PID/stat; ok is false when the process is gone or
// there is no /proc.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, false
	}
	return procStat{ppid: ppid, cpu: time.Duration(utime+stime) * clockTick}, true
}

// withChildren returns root and its child processes (PostgreSQL's
// postmaster and its backends and workers).
func withChildren(root int) []int {
	pids := []int{root}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok && st.ppid == root {
			pids = append(pids, pid)
		}
	}
	return pids
}

// postmasterPID reads the server's pid from postmaster.pid in its data
// directory; 0 if it cannot.
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// cpuProbe reports the CPU time each process of a target has used so far.
type cpuProbe func() map[int]time.Duration

// processCPU probes one process.
func processCPU(pid int) cpuProbe {
	return func() map[int]time.Duration { return cpuSnapshot([]int{pid}) }
}

// treeCPU probes a process and its children as they are at each call.
func treeCPU(root func() int) cpuProbe {
	return func() map[int]time.Duration {
		pid := root()
		if pid == 0 {
			return nil
		}
		return cpuSnapshot(withChildren(pid))
	}
}

func cpuSnapshot(pids []int) map[int]time.Duration {
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		if st, ok := readStat(pid); ok {
			out[pid] = st.cpu
		}
	}
	return out
}

// cpuUsed is the CPU time used between two snapshots by the processes of
// the second; a process started in between counts from zero.
func cpuUsed(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, cpu := range after {
		d += cpu - before[pid]
	}
	return d
}
