package devenv_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Round two, point 21: make up stopped by a signal stops everything it
// started, PostgreSQL and Redis included, whether the signal is one Ctrl-C,
// Ctrl-C pressed again and again while it is stopping (both sent to the whole
// foreground process group, as a terminal does), or a SIGTERM to the script
// alone. Each run starts the real script (up.sh, as make up does) on ports
// and a data directory of its own, waits for the demo data, and signals it.
func TestUpStopsEverythingItStarted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system three times")
	}
	for _, tc := range []struct {
		name   string
		signal func(t *testing.T, cmd *exec.Cmd)
	}{
		{"ctrl-c", func(t *testing.T, cmd *exec.Cmd) { kill(t, -cmd.Process.Pid, syscall.SIGINT) }},
		{"ctrl-c again and again", func(t *testing.T, cmd *exec.Cmd) {
			// An impatient user: Ctrl-C every 40 ms for two seconds, through
			// every step of the clean-up.
			for range 50 {
				if syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) != nil {
					return // the group is gone
				}
				time.Sleep(40 * time.Millisecond)
			}
		}},
		{"sigterm", func(t *testing.T, cmd *exec.Cmd) { kill(t, cmd.Process.Pid, syscall.SIGTERM) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ports := freePorts(t, 9)
			env := map[string]string{
				"SOUK_DATA_DIR":   t.TempDir(),
				"SOUK_PG_PORT":    ports[0],
				"SOUK_REDIS_PORT": ports[1],
				// make up starts no cluster; none of the tests' must be touched.
				"SOUK_CLUSTER_PORTS":             "",
				"SOUK_BUYER_GRPC_ADDR":           "127.0.0.1:" + ports[2],
				"SOUK_BUYER_HTTP_ADDR":           "127.0.0.1:" + ports[3],
				"SOUK_BUYER_INTERNAL_HTTP_ADDR":  "127.0.0.1:" + ports[4],
				"SOUK_SELLER_GRPC_ADDR":          "127.0.0.1:" + ports[5],
				"SOUK_SELLER_HTTP_ADDR":          "127.0.0.1:" + ports[6],
				"SOUK_SELLER_INTERNAL_GRPC_ADDR": "127.0.0.1:" + ports[7],
				"SOUK_SELLER_INTERNAL_HTTP_ADDR": "127.0.0.1:" + ports[8],
			}
			environ := os.Environ()
			for k, v := range env {
				environ = append(environ, k+"="+v)
			}
			t.Cleanup(func() {
				purge := exec.Command("bash", "stack.sh", "purge")
				purge.Env = environ
				if out, err := purge.CombinedOutput(); err != nil {
					t.Logf("purge: %v\n%s", err, out)
				}
			})

			cmd := exec.Command("bash", "up.sh")
			cmd.Env = environ
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a foreground group of its own
			out, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout, cmd.Stderr = w, w
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			_ = w.Close()
			ready := make(chan struct{})
			var mu sync.Mutex
			var lines []string
			printed := func() string { mu.Lock(); defer mu.Unlock(); return strings.Join(lines, "\n") }
			go func() {
				defer out.Close()
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					mu.Lock()
					lines = append(lines, sc.Text())
					mu.Unlock()
					if strings.HasPrefix(sc.Text(), "logs: tail -f") {
						close(ready)
					}
				}
			}()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-ready:
			case err := <-exited:
				t.Fatalf("up.sh ended before the demo data was in: %v\n%s", err, printed())
			case <-time.After(5 * time.Minute):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				t.Fatal("up.sh did not seed the demo data in five minutes")
			}
			for name, port := range map[string]string{"PostgreSQL": ports[0], "Redis": ports[1], "buyer-svc": ports[2], "seller-svc": ports[5]} {
				if !listening(port) {
					t.Fatalf("%s is not listening on %s once make up is ready", name, port)
				}
			}

			tc.signal(t, cmd)
			select {
			case <-exited:
			case <-time.After(2 * time.Minute):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				t.Fatal("up.sh did not end within two minutes of the signal")
			}
			for name, port := range map[string]string{"PostgreSQL": ports[0], "Redis": ports[1], "buyer-svc": ports[2],
				"seller-svc": ports[5], "seller-svc's internal port": ports[7]} {
				if listening(port) {
					t.Errorf("%s still listens on %s after make up ended", name, port)
				}
			}
			if pid, err := os.ReadFile(filepath.Join(env["SOUK_DATA_DIR"], "redis", "redis.pid")); err == nil {
				t.Errorf("Redis left its pid file (%s): it did not shut down", strings.TrimSpace(string(pid)))
			}
			if t.Failed() {
				t.Logf("up.sh printed:\n%s", printed())
			}
		})
	}
}

func kill(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("signal %d: %v", pid, err)
	}
}

// freePorts returns n ports nothing listens on now.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ls []net.Listener
	var ports []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

func listening(port string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+port)
	if err == nil {
		_ = c.Close()
	}
	return err == nil
}
