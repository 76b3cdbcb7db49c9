package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The parts of the machine whose CPU a cell is charged with, in the order
// of the CPU table.
const (
	partPostgres = "PostgreSQL"
	partBuyer    = "buyer-svc"
	partSeller   = "seller-svc"
	partRedis    = "Redis"
	partLoad     = "load generator"
	partPgbench  = "pgbench"
	partFloor    = "floor"
)

// soukParts are the parts a cell of Souk's is charged with, in the CPU
// table's order; the floor server, idle then, is not one of them.
var soukParts = []string{partPostgres, partBuyer, partSeller, partRedis, partLoad}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuTimes is the CPU each part has used so far.
type cpuTimes map[string]time.Duration

// minus is what was used between then and now.
func (now cpuTimes) minus(then cpuTimes) cpuTimes {
	d := cpuTimes{}
	for part, t := range now {
		d[part] = t - then[part]
	}
	return d
}

// procStat reads a process's parent and CPU times from /proc/<pid>/stat:
// its own (user and system) and its reaped children's.
func procStat(pid int) (ppid int, own, children time.Duration, err error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, 0, err
	}
	// The command name, in parentheses, may hold spaces; the fields follow it.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
	n := make([]int64, 5)
	for j, k := range []int{1, 11, 12, 13, 14} {
		if n[j], err = strconv.ParseInt(f[k], 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return int(n[0]), time.Duration(n[1]+n[2]) * clockTick, time.Duration(n[3]+n[4]) * clockTick, nil
}

// postmasterSQL reads a server's postmaster's process id: the first line
// of postmaster.pid, in its data directory. (A backend's parent would do
// on one server, but a worker's backend that a statement run through the
// coordinator asked has exited by the time /proc is read.)
const postmasterSQL = `SELECT split_part(pg_read_file('postmaster.pid'), E'\n', 1)`

// postmasters finds the PostgreSQL servers a database is on (on Citus,
// the coordinator and, by run_command_on_workers, every worker) and checks
// that each is a postgres process on this machine, whose CPU /proc shows;
// a server elsewhere fails, even one whose process id names a process here.
func postmasters(ctx context.Context, db *pgxpool.Pool, citus bool) ([]int, error) {
	q := postmasterSQL
	if citus {
		q += ` UNION ALL SELECT result FROM run_command_on_workers($q$` + postmasterSQL + `$q$)`
	}
	rows, _ := db.Query(ctx, q)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL's process: %w", err)
	}
	var pids []int
	for _, l := range lines {
		pid, err := localPostmaster(l)
		if err != nil {
			return nil, err
		}
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("PostgreSQL's process: no server answered")
	}
	return pids, nil
}

// localPostmaster is the process a server's postmaster.pid names (its
// first line), if it is a postgres process on this machine.
func localPostmaster(line string) (int, error) {
	pid, err := strconv.Atoi(line)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("PostgreSQL's process: postmaster.pid says %q", line)
	}
	comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		return 0, fmt.Errorf("PostgreSQL (process %d) is not on this machine", pid)
	}
	return pid, nil
}

// postgresCPU is the CPU of a PostgreSQL server and all its processes, the
// ones that have exited (the backends of a pgbench run) included: the
// postmaster's own, its reaped children's, and its live children's.
func postgresCPU(postmaster int) (time.Duration, error) {
	r, err := readPostgres(postmaster)
	return r.total(), err
}

// pgReading is one reading of a PostgreSQL server's CPU so far: the
// postmaster's own, its reaped children's (those that have exited), and
// each live child's, a background process (the checkpointer, the
// background writer, the WAL writer, autovacuum, and background workers
// such as Citus's maintenance daemon) or a client's backend, told apart by
// the title PostgreSQL gives each process.
type pgReading struct {
	postmaster, reaped time.Duration
	children           map[int]pgChild
}

type pgChild struct {
	cpu        time.Duration
	background bool
}

// readPostgres reads a server's CPU so far. A child the postmaster reaps
// while /proc is read would be missed (its CPU not yet in the reaped
// children's when the postmaster was read, and gone from /proc), or
// counted twice: the read is made again until the postmaster reaped
// nothing meanwhile (an exited child not yet reaped is still in /proc).
// Where connections come and go faster than that, the last read is
// taken, off by what a child or two used.
func readPostgres(postmaster int) (pgReading, error) {
	var r pgReading
	for range 5 {
		var err error
		if r, err = readPostgresOnce(postmaster); err != nil {
			return pgReading{}, err
		}
		_, _, reaped, err := procStat(postmaster)
		if err != nil {
			return pgReading{}, err
		}
		if reaped == r.reaped {
			break
		}
	}
	return r, nil
}

func readPostgresOnce(postmaster int) (pgReading, error) {
	_, own, reaped, err := procStat(postmaster)
	if err != nil {
		return pgReading{}, err
	}
	r := pgReading{postmaster: own, reaped: reaped, children: map[int]pgChild{}}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return pgReading{}, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		ppid, own, _, err := procStat(pid)
		if err != nil || ppid != postmaster {
			continue
		}
		r.children[pid] = pgChild{cpu: own, background: isBackground(pid)}
	}
	return r, nil
}

// total is all the server's CPU so far.
func (r pgReading) total() time.Duration {
	t := r.postmaster + r.reaped
	for _, c := range r.children {
		t += c.cpu
	}
	return t
}

// backgroundSince is the CPU the server's background processes used
// between then and r: the postmaster's, and what each background process
// live at r used since then (all of it if it started since). One that
// exited in between is not counted off: the postmaster, reaping it, added
// its CPU to its children's, so the background's figure fell by what it
// had used before then (an autovacuum worker's, half a second), below
// zero; what it used after then is left to the backends.
func (r pgReading) backgroundSince(then pgReading) time.Duration {
	b := r.postmaster - then.postmaster
	for pid, c := range r.children {
		if !c.background {
			continue
		}
		// A pid used again is a new process, whose CPU is all since then.
		if was, ok := then.children[pid]; ok && was.background && was.cpu <= c.cpu {
			b += c.cpu - was.cpu
		} else {
			b += c.cpu
		}
	}
	return b
}

// isBackground reports whether a child of the postmaster is one of its
// background processes rather than a client's backend: a backend's title
// is "postgres: user database host ...", a background process's its role.
func isBackground(pid int) bool {
	title, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	t := strings.TrimPrefix(strings.TrimRight(string(title), "\x00 "), "postgres: ")
	for _, role := range []string{"checkpointer", "background writer", "walwriter", "autovacuum", "logical replication",
		"archiver", "Citus"} {
		if strings.HasPrefix(t, role) {
			return true
		}
	}
	return false
}

// cpu reads the CPU used so far by PostgreSQL, Redis, both services, the
// floor server and this process (ghz's runner, the load generator). Only a stack on this
// machine can be read; elsewhere it fails.
func (b *bench) cpu(ctx context.Context) (cpuTimes, error) {
	t := cpuTimes{}
	if b.postmaster == 0 {
		pids, err := postmasters(ctx, b.soukPool, false)
		if err != nil {
			return nil, err
		}
		b.postmaster = pids[0]
	}
	var err error
	if t[partPostgres], err = postgresCPU(b.postmaster); err != nil {
		return nil, err
	}
	info, err := b.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			secs, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("redis %s: %w", k, err)
			}
			t[partRedis] += time.Duration(secs * float64(time.Second))
		}
	}
	pids := map[string]int{partLoad: os.Getpid()}
	for _, p := range b.procs {
		pids[p.name] = p.cmd.Process.Pid
	}
	for part, pid := range pids {
		_, own, _, err := procStat(pid)
		if err != nil {
			return nil, err
		}
		t[part] = own
	}
	return t, nil
}

// CPU is what one operation cost each part, on average over a cell.
type CPU map[string]time.Duration

// perOp divides a cell's CPU by the operations it did; nil if none.
func perOp(used cpuTimes, ops float64) CPU {
	if ops <= 0 || used == nil {
		return nil
	}
	c := CPU{}
	for part, t := range used {
		if t > 0 {
			c[part] = time.Duration(float64(t) / ops)
		}
	}
	return c
}

// Total is the sum over the parts.
func (c CPU) Total() time.Duration {
	var t time.Duration
	for _, d := range c {
		t += d
	}
	return t
}

// cpuNow is cpu's reading, or nil where it cannot be read (the run goes
// on without the CPU table).
func (b *bench) cpuNow(ctx context.Context) cpuTimes {
	t, err := b.cpu(ctx)
	if err != nil {
		if !b.cpuFailed {
			b.log("no CPU table: %v", err)
			b.cpuFailed = true
		}
		return nil
	}
	return t
}

// cpuSince is the CPU used since then (nil if either is unknown).
func (b *bench) cpuSince(ctx context.Context, then cpuTimes) cpuTimes {
	if then == nil {
		return nil
	}
	now := b.cpuNow(ctx)
	if now == nil {
		return nil
	}
	return now.minus(then)
}

// only keeps the given parts (nil stays nil).
func (t cpuTimes) only(parts ...string) cpuTimes {
	if t == nil {
		return nil
	}
	o := cpuTimes{}
	for _, p := range parts {
		o[p] = t[p]
	}
	return o
}
