package postgres

// OrderTableColumns names the columns orderTable maps, for the tests.
func OrderTableColumns() []string {
	var out []string
	for _, c := range orderTable {
		out = append(out, c.name)
	}
	return out
}
