package e2e

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/souk-dev/souk/internal/app"
)

// Round two, point 20: health watches need no token, so a replica bounds
// how many are open at once (RESOURCE_EXHAUSTED beyond, Check still
// answers); Go's profiles are off on the internal listener unless
// SOUK_PPROF turns them on.
func TestUnauthenticatedLimitsAndProfiles(t *testing.T) {
	s := startSystem(t, 1, nil)
	conn := dial(t, s.buyers[0].GRPCAddr())
	health := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var over error
	for i := range 65 {
		w, err := health.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = w.Recv()
		}
		if err != nil {
			if i < 64 {
				t.Fatalf("health watch %d: %v", i, err)
			}
			over = err
		}
	}
	if status.Code(over) != codes.ResourceExhausted {
		t.Fatalf("the 65th health watch: %v, want RESOURCE_EXHAUSTED", over)
	}
	if r, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check while watches are full: %v %v", r, err)
	}
	cancel()

	get := func(addr string) int {
		resp, err := http.Get("http://" + addr + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(s.buyers[0].InternalHTTPAddr()); code != http.StatusNotFound {
		t.Fatalf("profiles by default: HTTP %d, want 404", code)
	}
	on := startSystem(t, 1, func(c *app.Config) { c.Profiles = true })
	if code := get(on.buyers[0].InternalHTTPAddr()); code != http.StatusOK {
		t.Fatalf("profiles with SOUK_PPROF: HTTP %d, want 200", code)
	}
}
