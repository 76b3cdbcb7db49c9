package bankday_test

import (
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/bankday"
)

func date(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestAdd(t *testing.T) {
	cal, err := bankday.NewCalendar("2026-12-25", "2026-12-31", "2027-01-01", "2026-11-26", "2024-02-29")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from string
		n          int
		want       string
	}{
		{"zero days", "2026-11-23 10:00", 0, "2026-11-23 10:00"},
		{"monday + 1", "2026-11-23 10:00", 1, "2026-11-24 10:00"},
		{"friday + 1 skips the weekend", "2026-11-20 09:30", 1, "2026-11-23 09:30"},
		{"saturday + 1 is monday", "2026-11-21 12:00", 1, "2026-11-23 12:00"},
		{"sunday + 1 is monday", "2026-11-22 23:59", 1, "2026-11-23 23:59"},
		{"a holiday is skipped", "2026-11-25 08:00", 1, "2026-11-27 08:00"},
		{"15 days over three weeks", "2026-11-02 10:00", 15, "2026-11-23 10:00"},
		{"15 days across a holiday", "2026-11-16 10:00", 15, "2026-12-08 10:00"},
		{"month end", "2026-09-29 10:00", 3, "2026-10-02 10:00"},
		{"christmas", "2026-12-23 10:00", 3, "2026-12-29 10:00"},
		{"new year with holidays", "2026-12-29 10:00", 3, "2027-01-05 10:00"},
		{"15 days across the year end", "2026-12-18 10:00", 15, "2027-01-13 10:00"},
		{"leap day holiday", "2024-02-28 10:00", 1, "2024-03-01 10:00"},
		{"february in a common year", "2027-02-26 10:00", 1, "2027-03-01 10:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cal.Add(date(tc.from), tc.n); !got.Equal(date(tc.want)) {
				t.Fatalf("Add(%s, %d) = %s (%s), want %s", tc.from, tc.n, got.Format("2006-01-02 15:04"), got.Weekday(), tc.want)
			}
		})
	}
}

func TestIsBankingDay(t *testing.T) {
	cal, _ := bankday.NewCalendar("2026-12-25")
	for s, want := range map[string]bool{"2026-12-24 00:00": true, "2026-12-25 12:00": false, "2026-12-26 12:00": false, "2026-12-27 12:00": false, "2026-12-28 00:00": true} {
		if got := cal.IsBankingDay(date(s)); got != want {
			t.Errorf("IsBankingDay(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestNewCalendarRejectsBadDates(t *testing.T) {
	if _, err := bankday.NewCalendar("2026-13-01"); err == nil {
		t.Fatal("accepted month 13")
	}
	if _, err := bankday.NewCalendar("25.12.2026"); err == nil {
		t.Fatal("accepted a non-ISO date")
	}
}
