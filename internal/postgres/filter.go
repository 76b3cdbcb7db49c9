package postgres

import (
	"strconv"
	"strings"
)

// filter builds a WHERE clause of only the predicates that apply. Each
// combination is then a statement of its own, whose plan fits it: a
// catch-all "$2 IS NULL OR (created_at, id) < ($2, $3)" shares one
// prepared statement among all, and a generic plan of it (PostgreSQL's
// choice once it finds one no dearer than planning anew) cannot use the
// index for the part that is optional.
type filter struct {
	preds []string
	args  []any
}

// and adds a predicate; each ? in it stands for the next of args (the
// jsonb ? operator is not to be used in one).
func (f *filter) and(pred string, args ...any) {
	f.preds = append(f.preds, f.number(pred, args))
}

// after adds the keyset predicate of a page token (the first page has
// none): keyset compares the ordering columns with (?, ?), the previous
// page's last row's time and id.
func (f *filter) after(token, keyset string) error {
	if token == "" {
		return nil
	}
	at, id, err := decodeToken(token)
	if err != nil {
		return err
	}
	f.and(keyset, at, id)
	return nil
}

// where returns the clause ("WHERE …" and the given ORDER BY) with its
// limit written into the statement, not passed as a parameter, and the
// arguments. A generic plan does not know a parameter's limit and is
// costed as if a tenth of the matching rows were wanted, so PostgreSQL
// never chose one for a page of 20 of a buyer's orders and planned every
// page anew. The limits are page sizes (at most 100) and batch sizes: a
// few statements each, every one with a plan that fits. Every caller has
// added a predicate (the party, the order, the status) before.
func (f *filter) where(orderBy string, limit int) (string, []any) {
	return "WHERE " + strings.Join(f.preds, " AND ") + " " + orderBy + " LIMIT " + strconv.Itoa(limit), f.args
}

func (f *filter) number(sql string, args []any) string {
	for _, a := range args {
		f.args = append(f.args, a)
		sql = strings.Replace(sql, "?", "$"+strconv.Itoa(len(f.args)), 1)
	}
	return sql
}
