package deadline

import (
	"context"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

// MarkerKey is the key whose expiry fires the deadlines due at due.
func MarkerKey(prefix string, due time.Time) string {
	return (&Scheduler{prefix: prefix}).markerKey(bucketOf(due))
}

// Armed reports whether Redis holds the order's deadline of the given
// kind, due at due (more than a grain from now), in its bucket.
func (s *Scheduler) Armed(ctx context.Context, orderID string, kind order.DeadlineKind, due time.Time) bool {
	ok, err := s.rdb.HExists(ctx, s.membersKey(bucketOf(due)), member(orderID, kind)).Result()
	return err == nil && ok
}
