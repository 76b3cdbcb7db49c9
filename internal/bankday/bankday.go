// Package bankday counts banking days: weekdays that are not holidays.
// Refunds are due a number of banking days after they are owed.
package bankday

import (
	"fmt"
	"strings"
	"time"
)

// Calendar knows the holidays; weekends are never banking days.
type Calendar struct {
	holidays map[string]bool // "2006-01-02"
}

// NewCalendar returns a calendar with the given holidays (dates "2006-01-02").
func NewCalendar(holidays ...string) (Calendar, error) {
	c := Calendar{holidays: map[string]bool{}}
	for _, h := range holidays {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			return Calendar{}, fmt.Errorf("holiday %q is not a date like 2026-12-25", h)
		}
		c.holidays[h] = true
	}
	return c, nil
}

// IsBankingDay reports whether t's date (in t's location) is a weekday and
// not a holiday.
func (c Calendar) IsBankingDay(t time.Time) bool {
	switch t.Weekday() {
	case time.Saturday, time.Sunday:
		return false
	}
	return !c.holidays[t.Format(time.DateOnly)]
}

// Add returns the time n banking days after t, at t's time of day: each
// step moves to the next date that is a banking day. Adding 0 returns t.
func (c Calendar) Add(t time.Time, n int) time.Time {
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if c.IsBankingDay(t) {
			n--
		}
	}
	return t
}
