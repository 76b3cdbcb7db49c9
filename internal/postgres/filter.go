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

// where returns the clause ("WHERE …", or nothing for no predicates)
// followed by tail, whose ? stand for args, and all the arguments.
func (f *filter) where(tail string, args ...any) (string, []any) {
	tail = f.number(tail, args)
	if len(f.preds) == 0 {
		return tail, f.args
	}
	return "WHERE " + strings.Join(f.preds, " AND ") + " " + tail, f.args
}

func (f *filter) number(sql string, args []any) string {
	for _, a := range args {
		f.args = append(f.args, a)
		sql = strings.Replace(sql, "?", "$"+strconv.Itoa(len(f.args)), 1)
	}
	return sql
}
