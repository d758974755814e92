package sqlxlate

import (
	"database/sql/driver"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// mtime is a MySQL DATE/DATETIME value; unlike time.Time it can hold the
// zero date '0000-00-00' and zero parts, which WordPress uses.
type mtime struct {
	y, mo, d, h, mi, s, us int
	hasTime, hasDate       bool
}

func (t mtime) isZeroDate() bool { return t.y == 0 || t.mo == 0 || t.d == 0 }

func (t mtime) goTime() time.Time {
	return time.Date(t.y, time.Month(t.mo), t.d, t.h, t.mi, t.s, t.us*1000, time.Local)
}

func fromGo(g time.Time, hasTime bool) mtime {
	return mtime{y: g.Year(), mo: int(g.Month()), d: g.Day(), h: g.Hour(), mi: g.Minute(), s: g.Second(), us: g.Nanosecond() / 1000, hasTime: hasTime, hasDate: true}
}

func (t mtime) dateString() string { return fmt.Sprintf("%04d-%02d-%02d", t.y, t.mo, t.d) }

func (t mtime) datetimeString() string {
	s := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", t.y, t.mo, t.d, t.h, t.mi, t.s)
	if t.us != 0 {
		s += fmt.Sprintf(".%06d", t.us)
	}
	return s
}

func (t mtime) String() string {
	if t.hasTime {
		return t.datetimeString()
	}
	return t.dateString()
}

func (t mtime) daynr() int { return calcDaynr(t.y, t.mo, t.d) }

// weekday: 0 = Sunday … 6 = Saturday.
func (t mtime) weekday() int { return (t.daynr() + 6) % 7 }

// calcDaynr is MySQL's day number (TO_DAYS).
func calcDaynr(year, month, day int) int {
	if year == 0 && month == 0 {
		return 0
	}
	delsum := 365*year + 31*(month-1) + day
	if month <= 2 {
		year--
	} else {
		delsum -= (month*4 + 23) / 10
	}
	temp := ((year/100 + 1) * 3) / 4
	return delsum + year/4 - temp
}

// parseMTime parses a MySQL date/datetime value (string, number or
// time.Time). ok is false for values MySQL would turn into NULL.
func parseMTime(v driver.Value) (mtime, bool) {
	switch x := v.(type) {
	case nil:
		return mtime{}, false
	case time.Time:
		return fromGo(x, true), true
	case int64:
		return parseNumericDate(strconv.FormatInt(x, 10))
	case float64:
		return parseNumericDate(strconv.FormatInt(int64(x), 10))
	}
	s := strings.TrimSpace(toString(v))
	if s == "" {
		return mtime{}, false
	}
	if !strings.ContainsAny(s, "-/:. ") {
		return parseNumericDate(s)
	}
	var t mtime
	datePart, timePart := s, ""
	if i := strings.IndexAny(s, " T"); i >= 0 {
		datePart, timePart = s[:i], strings.TrimSpace(s[i+1:])
	}
	if !strings.ContainsAny(datePart, "-/") && strings.Contains(datePart, ":") {
		return mtime{}, false
	}
	dp := splitAny(datePart, "-/.")
	if len(dp) != 3 {
		return mtime{}, false
	}
	var err error
	if t.y, err = strconv.Atoi(dp[0]); err != nil {
		return mtime{}, false
	}
	if len(dp[0]) == 2 {
		if t.y < 70 {
			t.y += 2000
		} else {
			t.y += 1900
		}
	}
	if t.mo, err = strconv.Atoi(dp[1]); err != nil || t.mo > 12 {
		return mtime{}, false
	}
	if t.d, err = strconv.Atoi(dp[2]); err != nil || t.d > 31 {
		return mtime{}, false
	}
	t.hasDate = true
	if timePart != "" {
		if !parseClock(timePart, &t) {
			return mtime{}, false
		}
		t.hasTime = true
	}
	if !t.isZeroDate() && t.d > daysIn(t.y, t.mo) {
		return mtime{}, false
	}
	return t, true
}

func parseClock(s string, t *mtime) bool {
	frac := ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s, frac = s[:i], s[i+1:]
	}
	tp := strings.Split(s, ":")
	if len(tp) < 2 || len(tp) > 3 {
		return false
	}
	var err error
	if t.h, err = strconv.Atoi(tp[0]); err != nil || t.h > 23 {
		return false
	}
	if t.mi, err = strconv.Atoi(tp[1]); err != nil || t.mi > 59 {
		return false
	}
	if len(tp) == 3 {
		if t.s, err = strconv.Atoi(tp[2]); err != nil || t.s > 59 {
			return false
		}
	}
	if frac != "" {
		for len(frac) < 6 {
			frac += "0"
		}
		if t.us, err = strconv.Atoi(frac[:6]); err != nil {
			return false
		}
	}
	return true
}

func parseNumericDate(s string) (mtime, bool) {
	var t mtime
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }
	switch len(s) {
	case 8:
		t = mtime{y: atoi(s[:4]), mo: atoi(s[4:6]), d: atoi(s[6:8]), hasDate: true}
	case 6:
		y := atoi(s[:2])
		if y < 70 {
			y += 2000
		} else {
			y += 1900
		}
		t = mtime{y: y, mo: atoi(s[2:4]), d: atoi(s[4:6]), hasDate: true}
	case 14:
		t = mtime{y: atoi(s[:4]), mo: atoi(s[4:6]), d: atoi(s[6:8]), h: atoi(s[8:10]), mi: atoi(s[10:12]), s: atoi(s[12:14]), hasDate: true, hasTime: true}
	default:
		return mtime{}, false
	}
	if t.mo > 12 || t.d > 31 || t.h > 23 || t.mi > 59 || t.s > 59 {
		return mtime{}, false
	}
	return t, true
}

func splitAny(s, seps string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) })
}

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func dateFn(f func(mtime) driver.Value) func([]driver.Value) (driver.Value, error) {
	return func(a []driver.Value) (driver.Value, error) {
		t, ok := parseMTime(a[0])
		if !ok {
			return nil, nil
		}
		return f(t), nil
	}
}

// partFn extracts a part; zero dates give 0 as in MySQL.
func partFn(f func(mtime) int64) func([]driver.Value) (driver.Value, error) {
	return func(a []driver.Value) (driver.Value, error) {
		t, ok := parseMTime(a[0])
		if !ok {
			if tt, ok := parseTimeOnly(a[0]); ok {
				return f(tt), nil
			}
			return nil, nil
		}
		return f(t), nil
	}
}

// realDateFn needs a real calendar date: zero dates give NULL.
func realDateFn(f func(mtime) driver.Value) func([]driver.Value) (driver.Value, error) {
	return func(a []driver.Value) (driver.Value, error) {
		t, ok := parseMTime(a[0])
		if !ok || t.isZeroDate() {
			return nil, nil
		}
		return f(t), nil
	}
}

func parseTimeOnly(v driver.Value) (mtime, bool) {
	s := strings.TrimSpace(toString(v))
	if s == "" || strings.ContainsAny(s, "-/") {
		return mtime{}, false
	}
	var t mtime
	if !parseClock(s, &t) {
		return mtime{}, false
	}
	t.hasTime = true
	return t, true
}

func fnTime(a []driver.Value) (driver.Value, error) {
	if t, ok := parseMTime(a[0]); ok {
		return fmt.Sprintf("%02d:%02d:%02d", t.h, t.mi, t.s), nil
	}
	if t, ok := parseTimeOnly(a[0]); ok {
		return fmt.Sprintf("%02d:%02d:%02d", t.h, t.mi, t.s), nil
	}
	return nil, nil
}

func fnUnixTimestamp(a []driver.Value) (driver.Value, error) {
	if len(a) == 0 {
		return time.Now().Unix(), nil
	}
	if a[0] == nil {
		return nil, nil
	}
	t, ok := parseMTime(a[0])
	if !ok || t.isZeroDate() {
		return int64(0), nil
	}
	g := t.goTime()
	if g.Unix() < 0 {
		return int64(0), nil
	}
	if t.us != 0 {
		return float64(g.UnixMicro()) / 1e6, nil
	}
	return g.Unix(), nil
}

func fnFromUnixtime(a []driver.Value) (driver.Value, error) {
	if len(a) == 0 || len(a) > 2 || anyNil(a) {
		return nil, nil
	}
	f, _ := toFloat(a[0])
	if f < 0 {
		return nil, nil
	}
	sec, frac := math.Modf(f)
	g := time.Unix(int64(sec), int64(math.Round(frac*1e6))*1000).In(time.Local)
	t := fromGo(g, true)
	if len(a) == 2 {
		return dateFormat(t, toString(a[1])), nil
	}
	return t.datetimeString(), nil
}

func fnDateFormat(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	t, ok := parseMTime(a[0])
	if !ok {
		tt, ok2 := parseTimeOnly(a[0])
		if !ok2 {
			return nil, nil
		}
		t = tt
	}
	return dateFormat(t, toString(a[1])), nil
}

var shortDays = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

func dateFormat(t mtime, f string) string {
	var b strings.Builder
	real := !t.isZeroDate()
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' || i+1 == len(f) {
			b.WriteByte(c)
			continue
		}
		i++
		h12 := t.h % 12
		if h12 == 0 {
			h12 = 12
		}
		switch f[i] {
		case 'a':
			if real {
				b.WriteString(shortDays[t.weekday()])
			}
		case 'b':
			if t.mo >= 1 {
				b.WriteString(time.Month(t.mo).String()[:3])
			}
		case 'c':
			b.WriteString(strconv.Itoa(t.mo))
		case 'D':
			b.WriteString(strconv.Itoa(t.d) + ordinal(t.d))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.d)
		case 'e':
			b.WriteString(strconv.Itoa(t.d))
		case 'f':
			fmt.Fprintf(&b, "%06d", t.us)
		case 'H':
			fmt.Fprintf(&b, "%02d", t.h)
		case 'h', 'I':
			fmt.Fprintf(&b, "%02d", h12)
		case 'i':
			fmt.Fprintf(&b, "%02d", t.mi)
		case 'j':
			if real {
				fmt.Fprintf(&b, "%03d", t.daynr()-calcDaynr(t.y, 1, 1)+1)
			}
		case 'k':
			b.WriteString(strconv.Itoa(t.h))
		case 'l':
			b.WriteString(strconv.Itoa(h12))
		case 'M':
			if t.mo >= 1 {
				b.WriteString(time.Month(t.mo).String())
			}
		case 'm':
			fmt.Fprintf(&b, "%02d", t.mo)
		case 'p':
			if t.h < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'r':
			ap := "AM"
			if t.h >= 12 {
				ap = "PM"
			}
			fmt.Fprintf(&b, "%02d:%02d:%02d %s", h12, t.mi, t.s, ap)
		case 'S', 's':
			fmt.Fprintf(&b, "%02d", t.s)
		case 'T':
			fmt.Fprintf(&b, "%02d:%02d:%02d", t.h, t.mi, t.s)
		case 'U':
			w, _ := calcWeek(t, weekFirstWeekday)
			fmt.Fprintf(&b, "%02d", w)
		case 'u':
			w, _ := calcWeek(t, weekMondayFirst)
			fmt.Fprintf(&b, "%02d", w)
		case 'V':
			w, _ := calcWeek(t, weekYear|weekFirstWeekday)
			fmt.Fprintf(&b, "%02d", w)
		case 'v':
			w, _ := calcWeek(t, weekMondayFirst|weekYear)
			fmt.Fprintf(&b, "%02d", w)
		case 'X':
			_, y := calcWeek(t, weekYear|weekFirstWeekday)
			fmt.Fprintf(&b, "%04d", y)
		case 'x':
			_, y := calcWeek(t, weekMondayFirst|weekYear)
			fmt.Fprintf(&b, "%04d", y)
		case 'W':
			if real {
				b.WriteString(time.Weekday(t.weekday()).String())
			}
		case 'w':
			if real {
				b.WriteString(strconv.Itoa(t.weekday()))
			}
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.y)
		case 'y':
			fmt.Fprintf(&b, "%02d", t.y%100)
		default:
			b.WriteByte(f[i])
		}
	}
	return b.String()
}

func ordinal(d int) string {
	if d%100 >= 11 && d%100 <= 13 {
		return "th"
	}
	switch d % 10 {
	case 1:
		return "st"
	case 2:
		return "nd"
	case 3:
		return "rd"
	}
	return "th"
}

const (
	weekMondayFirst  = 1
	weekYear         = 2
	weekFirstWeekday = 4
)

// calcWeek is MySQL's calc_week: the week number and its year.
func calcWeek(t mtime, behaviour int) (int, int) {
	if t.isZeroDate() {
		return 0, t.y
	}
	daynr := t.daynr()
	firstDaynr := calcDaynr(t.y, 1, 1)
	mondayFirst := behaviour&weekMondayFirst != 0
	wy := behaviour&weekYear != 0
	firstWeekday := behaviour&weekFirstWeekday != 0
	sundayFirst := 0
	if !mondayFirst {
		sundayFirst = 1
	}
	weekday := (firstDaynr + 5 + sundayFirst) % 7
	year := t.y
	if t.mo == 1 && t.d <= 7-weekday {
		if !wy && ((firstWeekday && weekday != 0) || (!firstWeekday && weekday >= 4)) {
			return 0, year
		}
		wy = true
		year--
		days := daysInYear(year)
		firstDaynr -= days
		weekday = (weekday + 53*7 - days) % 7
	}
	var days int
	if (firstWeekday && weekday != 0) || (!firstWeekday && weekday >= 4) {
		days = daynr - (firstDaynr + (7 - weekday))
	} else {
		days = daynr - (firstDaynr - weekday)
	}
	if wy && days >= 52*7 {
		weekday = (weekday + daysInYear(year)) % 7
		if (!firstWeekday && weekday < 4) || (firstWeekday && weekday == 0) {
			return 1, year + 1
		}
	}
	return days/7 + 1, year
}

func daysInYear(y int) int {
	if (y%4 == 0 && y%100 != 0) || y%400 == 0 {
		return 366
	}
	return 365
}

func weekMode(mode int) int {
	wf := mode & 7
	if wf&weekMondayFirst == 0 {
		wf ^= weekFirstWeekday
	}
	return wf
}

// weekArgs reads the (date[, mode]) of WEEK and YEARWEEK; ok is false
// when the answer is NULL.
func weekArgs(a []driver.Value) (t mtime, mode int, ok bool) {
	if len(a) == 0 || len(a) > 2 || a[0] == nil {
		return t, 0, false
	}
	t, ok = parseMTime(a[0])
	if !ok || t.isZeroDate() {
		return t, 0, false
	}
	if len(a) == 2 && a[1] != nil {
		m, _ := toInt(a[1])
		mode = int(m)
	}
	return t, mode, true
}

func fnWeek(a []driver.Value) (driver.Value, error) {
	t, mode, ok := weekArgs(a)
	if !ok {
		return nil, nil
	}
	w, _ := calcWeek(t, weekMode(mode))
	return int64(w), nil
}

func fnYearWeek(a []driver.Value) (driver.Value, error) {
	t, mode, ok := weekArgs(a)
	if !ok {
		return nil, nil
	}
	w, y := calcWeek(t, weekMode(mode)|weekYear)
	return int64(y*100 + w), nil
}

// fnDateAdd is DATE_ADD/DATE_SUB/+ INTERVAL: unit may carry a leading '-'.
func fnDateAdd(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	unit := strings.ToLower(toString(a[2]))
	neg := strings.HasPrefix(unit, "-")
	unit = strings.TrimPrefix(unit, "-")
	t, ok := parseMTime(a[0])
	if !ok {
		return nil, nil
	}
	if t.isZeroDate() {
		return nil, nil
	}
	var y, mo, d int
	var dur time.Duration
	switch unit {
	case "year", "quarter", "month", "week", "day", "hour", "minute", "second", "microsecond":
		f, _ := toFloat(a[1])
		if s, isStr := a[1].(string); isStr && strings.TrimSpace(s) == "" {
			return nil, nil
		}
		n := int(math.Round(f))
		if unit == "second" || unit == "microsecond" {
			// fractional seconds are honoured
			if unit == "second" {
				dur = time.Duration(f * float64(time.Second))
			} else {
				dur = time.Duration(n) * time.Microsecond
			}
			break
		}
		switch unit {
		case "year":
			y = n
		case "quarter":
			mo = 3 * n
		case "month":
			mo = n
		case "week":
			d = 7 * n
		case "day":
			d = n
		case "hour":
			dur = time.Duration(n) * time.Hour
		case "minute":
			dur = time.Duration(n) * time.Minute
		}
	default:
		parts, sign, ok := splitInterval(toString(a[1]))
		if !ok {
			return nil, nil
		}
		var fields []string
		switch unit {
		case "year_month":
			fields = []string{"y", "mo"}
		case "day_hour":
			fields = []string{"d", "h"}
		case "day_minute":
			fields = []string{"d", "h", "mi"}
		case "day_second":
			fields = []string{"d", "h", "mi", "s"}
		case "hour_minute":
			fields = []string{"h", "mi"}
		case "hour_second":
			fields = []string{"h", "mi", "s"}
		case "minute_second":
			fields = []string{"mi", "s"}
		default:
			return nil, fmt.Errorf("unsupported INTERVAL unit %s", unit)
		}
		if len(parts) > len(fields) {
			return nil, nil
		}
		fields = fields[len(fields)-len(parts):]
		for i, f := range fields {
			n := parts[i] * sign
			switch f {
			case "y":
				y = n
			case "mo":
				mo = n
			case "d":
				d = n
			case "h":
				dur += time.Duration(n) * time.Hour
			case "mi":
				dur += time.Duration(n) * time.Minute
			case "s":
				dur += time.Duration(n) * time.Second
			}
		}
	}
	if neg {
		y, mo, d, dur = -y, -mo, -d, -dur
	}
	g := time.Date(t.y, time.Month(t.mo), t.d, t.h, t.mi, t.s, t.us*1000, time.UTC)
	if y != 0 || mo != 0 {
		// MySQL clamps to the month's last day: Jan 31 + 1 month = Feb 28/29
		total := t.y*12 + (t.mo - 1) + y*12 + mo
		ny, nm := total/12, total%12+1
		nd := t.d
		if dim := daysIn(ny, nm); nd > dim {
			nd = dim
		}
		g = time.Date(ny, time.Month(nm), nd, t.h, t.mi, t.s, t.us*1000, time.UTC)
	}
	g = g.AddDate(0, 0, d).Add(dur)
	if g.Year() < 1 || g.Year() > 9999 {
		return nil, nil
	}
	r := fromGo(g, t.hasTime || dur != 0)
	return r.String(), nil
}

func splitInterval(s string) ([]int, int, bool) {
	s = strings.TrimSpace(s)
	sign := 1
	if strings.HasPrefix(s, "-") {
		sign = -1
		s = s[1:]
	}
	f := strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if len(f) == 0 {
		return nil, 0, false
	}
	out := make([]int, len(f))
	for i, p := range f {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, 0, false
		}
		out[i] = n
	}
	return out, sign, true
}

func fnExtract(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	unit := strings.ToLower(toString(a[0]))
	t, ok := parseMTime(a[1])
	if !ok {
		if t, ok = parseTimeOnly(a[1]); !ok {
			return nil, nil
		}
	}
	switch unit {
	case "year":
		return int64(t.y), nil
	case "quarter":
		return int64((t.mo + 2) / 3), nil
	case "month":
		return int64(t.mo), nil
	case "week":
		w, _ := calcWeek(t, weekMode(0))
		return int64(w), nil
	case "day":
		return int64(t.d), nil
	case "hour":
		return int64(t.h), nil
	case "minute":
		return int64(t.mi), nil
	case "second":
		return int64(t.s), nil
	case "microsecond":
		return int64(t.us), nil
	case "year_month":
		return int64(t.y*100 + t.mo), nil
	case "day_hour":
		return int64(t.d*100 + t.h), nil
	case "day_minute":
		return int64(t.d*10000 + t.h*100 + t.mi), nil
	case "day_second":
		return int64(t.d*1000000 + t.h*10000 + t.mi*100 + t.s), nil
	case "hour_minute":
		return int64(t.h*100 + t.mi), nil
	case "hour_second":
		return int64(t.h*10000 + t.mi*100 + t.s), nil
	case "minute_second":
		return int64(t.mi*100 + t.s), nil
	}
	return nil, fmt.Errorf("unsupported EXTRACT unit %s", unit)
}

func fnTimestampDiff(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	unit := strings.ToLower(toString(a[0]))
	t1, ok1 := parseMTime(a[1])
	t2, ok2 := parseMTime(a[2])
	if !ok1 || !ok2 || t1.isZeroDate() || t2.isZeroDate() {
		return nil, nil
	}
	g1, g2 := t1.goTime(), t2.goTime()
	switch unit {
	case "microsecond":
		return g2.Sub(g1).Microseconds(), nil
	case "second":
		return int64(g2.Sub(g1) / time.Second), nil
	case "minute":
		return int64(g2.Sub(g1) / time.Minute), nil
	case "hour":
		return int64(g2.Sub(g1) / time.Hour), nil
	case "day":
		return int64(g2.Sub(g1) / (24 * time.Hour)), nil
	case "week":
		return int64(g2.Sub(g1) / (7 * 24 * time.Hour)), nil
	case "month", "quarter", "year":
		months := (t2.y-t1.y)*12 + (t2.mo - t1.mo)
		// a month counts only when the day/time has been reached
		rest1 := ((t1.d*24+t1.h)*60+t1.mi)*60 + t1.s
		rest2 := ((t2.d*24+t2.h)*60+t2.mi)*60 + t2.s
		if months > 0 && rest2 < rest1 {
			months--
		} else if months < 0 && rest2 > rest1 {
			months++
		}
		switch unit {
		case "quarter":
			return int64(months / 3), nil
		case "year":
			return int64(months / 12), nil
		}
		return int64(months), nil
	}
	return nil, fmt.Errorf("unsupported TIMESTAMPDIFF unit %s", unit)
}

func fnFromDays(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	n, _ := toInt(a[0])
	if n < 366 {
		return "0000-00-00", nil
	}
	// MySQL's year 0 has 365 days, so count from 0001-01-01 = day 366.
	g := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n-366))
	return g.Format(dLayout), nil
}

func fnDateDiff(a []driver.Value) (driver.Value, error) {
	t1, ok1 := parseMTime(a[0])
	t2, ok2 := parseMTime(a[1])
	if !ok1 || !ok2 || t1.isZeroDate() || t2.isZeroDate() {
		return nil, nil
	}
	return int64(t1.daynr() - t2.daynr()), nil
}

func fnMakedate(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	y, _ := toInt(a[0])
	d, _ := toInt(a[1])
	if d <= 0 {
		return nil, nil
	}
	return time.Date(int(y), 1, int(d), 0, 0, 0, 0, time.UTC).Format(dLayout), nil
}

func fmtDuration(sec int64) string {
	sign := ""
	if sec < 0 {
		sign = "-"
		sec = -sec
	}
	return fmt.Sprintf("%s%02d:%02d:%02d", sign, sec/3600, sec/60%60, sec%60)
}

func fnSecToTime(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	n, _ := toInt(a[0])
	return fmtDuration(n), nil
}

func timeSeconds(v driver.Value) (int64, bool) {
	s := strings.TrimSpace(toString(v))
	sign := int64(1)
	if strings.HasPrefix(s, "-") {
		sign, s = -1, s[1:]
	}
	if t, ok := parseMTime(s); ok && t.hasDate {
		return int64(t.h*3600 + t.mi*60 + t.s), true
	}
	p := strings.Split(strings.SplitN(s, ".", 2)[0], ":")
	var total int64
	for _, x := range p {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, false
		}
		total = total*60 + n
	}
	for i := len(p); i < 3; i++ {
		total *= 60
	}
	return sign * total, true
}

func fnTimeToSec(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	n, ok := timeSeconds(a[0])
	if !ok {
		return nil, nil
	}
	return n, nil
}

func fnTimeDiff(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	t1, ok1 := parseMTime(a[0])
	t2, ok2 := parseMTime(a[1])
	if ok1 && ok2 && t1.hasDate && t2.hasDate {
		return fmtDuration(int64(t1.goTime().Sub(t2.goTime()) / time.Second)), nil
	}
	s1, ok1 := timeSeconds(a[0])
	s2, ok2 := timeSeconds(a[1])
	if !ok1 || !ok2 {
		return nil, nil
	}
	return fmtDuration(s1 - s2), nil
}

func addTime(a []driver.Value, sign int64) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	d, ok := timeSeconds(a[1])
	if !ok {
		return nil, nil
	}
	if t, ok := parseMTime(a[0]); ok && t.hasDate {
		g := t.goTime().Add(time.Duration(sign*d) * time.Second)
		return fromGo(g, true).datetimeString(), nil
	}
	s, ok := timeSeconds(a[0])
	if !ok {
		return nil, nil
	}
	return fmtDuration(s + sign*d), nil
}

func fnPeriodAdd(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	p, _ := toInt(a[0])
	n, _ := toInt(a[1])
	y, m := p/100, p%100
	if y < 70 {
		y += 2000
	} else if y < 100 {
		y += 1900
	}
	total := y*12 + m - 1 + n
	return (total/12)*100 + total%12 + 1, nil
}

func fnPeriodDiff(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	conv := func(p int64) int64 {
		y, m := p/100, p%100
		if y < 70 {
			y += 2000
		} else if y < 100 {
			y += 1900
		}
		return y*12 + m - 1
	}
	p1, _ := toInt(a[0])
	p2, _ := toInt(a[1])
	return conv(p1) - conv(p2), nil
}

func fnConvertTZ(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	t, ok := parseMTime(a[0])
	if !ok || t.isZeroDate() {
		return nil, nil
	}
	from, ok1 := loadTZ(toString(a[1]))
	to, ok2 := loadTZ(toString(a[2]))
	if !ok1 || !ok2 {
		return nil, nil
	}
	g := time.Date(t.y, time.Month(t.mo), t.d, t.h, t.mi, t.s, t.us*1000, from).In(to)
	return fromGo(g, true).datetimeString(), nil
}

func loadTZ(s string) (*time.Location, bool) {
	if strings.EqualFold(s, "SYSTEM") {
		return time.Local, true
	}
	if len(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':' {
		h, err1 := strconv.Atoi(s[1:3])
		m, err2 := strconv.Atoi(s[4:6])
		if err1 != nil || err2 != nil {
			return nil, false
		}
		off := h*3600 + m*60
		if s[0] == '-' {
			off = -off
		}
		return time.FixedZone(s, off), true
	}
	l, err := time.LoadLocation(s)
	if err != nil {
		return nil, false
	}
	return l, true
}

// fnStrToDate supports the common specifiers of STR_TO_DATE.
func fnStrToDate(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	s, f := toString(a[0]), toString(a[1])
	var t mtime
	hasTime, hasDate := false, false
	pm := -1
	si := 0
	num := func(max int) (int, bool) {
		for si < len(s) && s[si] == ' ' {
			si++
		}
		j := si
		for j < len(s) && j-si < max && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == si {
			return 0, false
		}
		n, _ := strconv.Atoi(s[si:j])
		si = j
		return n, true
	}
	for i := 0; i < len(f); i++ {
		if f[i] == ' ' {
			for si < len(s) && s[si] == ' ' {
				si++
			}
			continue
		}
		if f[i] != '%' || i+1 == len(f) {
			if si >= len(s) || s[si] != f[i] {
				return nil, nil
			}
			si++
			continue
		}
		i++
		var ok bool
		switch f[i] {
		case 'Y':
			t.y, ok = num(4)
			hasDate = true
		case 'y':
			t.y, ok = num(2)
			if t.y < 70 {
				t.y += 2000
			} else {
				t.y += 1900
			}
			hasDate = true
		case 'm', 'c':
			t.mo, ok = num(2)
			hasDate = true
		case 'd', 'e':
			t.d, ok = num(2)
			hasDate = true
		case 'H', 'k', 'h', 'I', 'l':
			t.h, ok = num(2)
			hasTime = true
		case 'i':
			t.mi, ok = num(2)
			hasTime = true
		case 's', 'S':
			t.s, ok = num(2)
			hasTime = true
		case 'f':
			t.us, ok = num(6)
		case 'p':
			if si+2 <= len(s) {
				switch strings.ToUpper(s[si : si+2]) {
				case "AM":
					pm, ok = 0, true
				case "PM":
					pm, ok = 1, true
				}
				si += 2
			}
		case 'M', 'b':
			for m := 1; m <= 12; m++ {
				name := time.Month(m).String()
				if f[i] == 'b' {
					name = name[:3]
				}
				if len(s)-si >= len(name) && strings.EqualFold(s[si:si+len(name)], name) {
					t.mo, ok = m, true
					si += len(name)
					break
				}
			}
			hasDate = true
		case '%':
			ok = si < len(s) && s[si] == '%'
			si++
		default:
			return nil, nil
		}
		if !ok {
			return nil, nil
		}
	}
	if pm == 1 && t.h < 12 {
		t.h += 12
	} else if pm == 0 && t.h == 12 {
		t.h = 0
	}
	t.hasTime, t.hasDate = hasTime, hasDate
	if !hasDate {
		return fmt.Sprintf("%02d:%02d:%02d", t.h, t.mi, t.s), nil
	}
	return t.String(), nil
}
