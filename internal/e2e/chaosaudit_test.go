package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	eventsv1 "github.com/souk-dev/souk/gen/go/souk/events/v1"
	"github.com/souk-dev/souk/internal/auth"
)

// auditor is an internal consumer of the event feed in a fault run: a
// member of a consumer group that lags behind (it acknowledges what it got
// half a second later), watching again through every fault. Whatever Redis
// loses, it must get every event of the run at least once.
type auditor struct {
	mu   sync.Mutex
	seen map[string]bool
}

// run consumes until ctx ends.
func (a *auditor) run(ctx context.Context, s *system) {
	tok := s.token(auth.RoleService, "auditor")
	client := eventsv1.NewOrderEventServiceClient(dial(s.t, s.sellers[0].InternalGRPCAddr()))
	for ctx.Err() == nil {
		stream, err := client.WatchOrderEvents(withToken(ctx, tok), &eventsv1.WatchOrderEventsRequest{Group: "chaos-audit", Consumer: "auditor-1", Cursor: "0"})
		for err == nil {
			var resp *eventsv1.WatchOrderEventsResponse
			if resp, err = stream.Recv(); err != nil {
				break
			}
			e := resp.GetEvent()
			if e == nil {
				continue
			}
			a.mu.Lock()
			a.seen[e.EventId] = true
			a.mu.Unlock()
			cursor := e.Cursor
			time.AfterFunc(500*time.Millisecond, func() {
				actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_, _ = client.AckOrderEvents(withToken(actx, tok), &eventsv1.AckOrderEventsRequest{Group: "chaos-audit", Cursors: []string{cursor}})
			})
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// check waits until the auditor got every event the record holds.
func (a *auditor) check(t *testing.T, dbURL string) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// missing are the events the record holds that the group did not get
	// (their ids, kinds and when they happened), or the read's error.
	missing := func() ([]string, error) {
		rows, _ := pool.Query(context.Background(), `SELECT id::text, kind || ' at ' || occurred_at FROM order_events ORDER BY occurred_at`)
		var out []string
		var id, what string
		_, err := pgx.ForEachRow(rows, []any{&id, &what}, func() error {
			a.mu.Lock()
			defer a.mu.Unlock()
			if !a.seen[id] {
				out = append(out, id+" ("+what+")")
			}
			return nil
		})
		return out, err
	}
	var lost []string
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if lost, err = missing(); err == nil && len(lost) == 0 {
			break
		}
	}
	if err != nil || len(lost) > 0 {
		t.Fatalf("after 60s the lagging consumer group lacks %d events (read: %v), first %v", len(lost), err, lost[:min(len(lost), 5)])
	}
	t.Logf("the consumer group got all %d events", len(a.seen))
}
