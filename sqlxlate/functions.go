package sqlxlate

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math"
	mrand "math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// DefaultMaxLength is the longest string or blob the functions return
// (SetMaxLength), MariaDB's default max_allowed_packet, as the sqlite
// package's limit on every value.
const DefaultMaxLength = 16 << 20

// ErrAllowedPacketOverflowed is MySQL's code for a string function whose
// result would be longer than max_allowed_packet.
const ErrAllowedPacketOverflowed = 1301

var maxLength atomic.Int64

func init() { maxLength.Store(DefaultMaxLength) }

// SetMaxLength sets the longest string or blob the functions return, for
// the whole process (they are registered once on the driver); n <= 0
// restores DefaultMaxLength. It should equal the databases' own limit
// (sqlite.Config.MaxLength), which SQLite applies to every value.
func SetMaxLength(n int) {
	if n <= 0 {
		n = DefaultMaxLength
	}
	maxLength.Store(int64(n))
}

// MaxLength is the longest string or blob the functions return.
func MaxLength() int { return int(maxLength.Load()) }

// tooLong is the error of a function whose result would be longer than
// MaxLength: MySQL's warning 1301 as an error (MySQL and MariaDB return
// NULL with that warning; an error does not pass a NULL off as the
// result). Functions check before they build a result, so a statement
// never holds more than a few times MaxLength.
func tooLong(fn string) error {
	return fmt.Errorf("Result of %s() was larger than max_allowed_packet (%d) - truncated", fn, MaxLength())
}

var reTooLong = regexp.MustCompile(`Result of (\w+)\(\) was larger than max_allowed_packet \((\d+)\) - truncated`)

// ResultTooLong recognises, in an error from SQLite running a statement,
// a function's result that was too long (the error crosses SQLite as
// text), and returns MySQL's error for it; nil otherwise.
func ResultTooLong(err error) *Error {
	if err == nil {
		return nil
	}
	m := reTooLong.FindString(err.Error())
	if m == "" {
		return nil
	}
	return &Error{Code: ErrAllowedPacketOverflowed, State: "HY000", Message: m}
}

// fitsLength reports whether n bytes may be returned.
func fitsLength(n int64) bool { return n >= 0 && n <= maxLength.Load() }

// bounded makes any function fail rather than return a string or blob
// longer than MaxLength (those that could build one check earlier).
func bounded(name string, f func([]driver.Value) (driver.Value, error)) func([]driver.Value) (driver.Value, error) {
	return func(a []driver.Value) (driver.Value, error) {
		v, err := f(a)
		switch x := v.(type) {
		case string:
			if !fitsLength(int64(len(x))) {
				return nil, tooLong(name)
			}
		case []byte:
			if !fitsLength(int64(len(x))) {
				return nil, tooLong(name)
			}
		}
		return v, err
	}
}

// Functions lists the MySQL functions SQLite lacks, implemented in Go. The
// translator calls them as mysql_<name>, so SQLite's built-ins keep their
// meaning for other clients of the same database. None returns a string
// longer than MaxLength.
func Functions() []Function {
	d := func(name string, n int, f func([]driver.Value) (driver.Value, error)) Function {
		return Function{Name: "mysql_" + name, NArgs: n, Deterministic: true, Impl: bounded(name, f)}
	}
	nd := func(name string, n int, f func([]driver.Value) (driver.Value, error)) Function {
		return Function{Name: "mysql_" + name, NArgs: n, Deterministic: false, Impl: bounded(name, f)}
	}
	fs := []Function{
		d("concat", -1, fnConcat),
		d("concat_ws", -1, fnConcatWS),
		d("field", -1, fnField),
		d("elt", -1, fnElt),
		d("locate", -1, fnLocate),
		d("substring", -1, fnSubstring),
		d("mid", -1, fnSubstring),
		d("substring_index", 3, fnSubstringIndex),
		d("left", 2, fnLeft),
		d("right", 2, fnRight),
		d("lpad", 3, fnLpad),
		d("rpad", 3, fnRpad),
		d("repeat", 2, fnRepeat),
		d("space", 1, fnSpace),
		d("reverse", 1, fnReverse),
		d("find_in_set", 2, fnFindInSet),
		d("strcmp", 2, fnStrcmp),
		d("insert", 4, fnInsert),
		d("quote", 1, fnQuote),
		d("regexp", 2, fnRegexp),
		d("regexp_replace", 3, fnRegexpReplace),
		d("regexp_substr", 2, fnRegexpSubstr),
		d("md5", 1, hashFn(func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) })),
		d("sha1", 1, hashFn(func(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) })),
		d("sha", 1, hashFn(func(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) })),
		d("sha2", 2, fnSha2),
		d("crc32", 1, fnCrc32),
		d("hex", 1, fnHex),
		d("unhex", 1, fnUnhex),
		d("bin", 1, func(a []driver.Value) (driver.Value, error) { return convBase(a[0], 2) }),
		d("oct", 1, func(a []driver.Value) (driver.Value, error) { return convBase(a[0], 8) }),
		d("bit_length", 1, func(a []driver.Value) (driver.Value, error) {
			if a[0] == nil {
				return nil, nil
			}
			return int64(len(toBytes(a[0])) * 8), nil
		}),
		d("ord", 1, fnOrd),
		d("soundex", 1, fnSoundex),
		d("format", -1, fnFormat),
		d("truncate", 2, fnTruncate),
		d("cast_int", 1, fnCastInt),
		d("ceil", 1, mathFn(math.Ceil)),
		d("ceiling", 1, mathFn(math.Ceil)),
		d("floor", 1, mathFn(math.Floor)),
		d("sqrt", 1, mathFn(math.Sqrt)),
		d("ln", 1, mathFn(math.Log)),
		d("log2", 1, mathFn(math.Log2)),
		d("log10", 1, mathFn(math.Log10)),
		d("exp", 1, mathFn(math.Exp)),
		d("log", 2, fnLog),
		d("pow", 2, fnPow),
		d("power", 2, fnPow),
		d("mod", 2, fnMod),
		d("sign", 1, fnSign),
		d("pi", 0, func([]driver.Value) (driver.Value, error) { return math.Pi, nil }),
		d("inet_aton", 1, fnInetAton),
		d("inet_ntoa", 1, fnInetNtoa),
		d("conv", 3, fnConv),
		nd("rand", -1, fnRand),
		nd("uuid", 0, fnUUID),
		nd("now", 0, func([]driver.Value) (driver.Value, error) { return time.Now().Format(dtLayout), nil }),
		nd("curdate", 0, func([]driver.Value) (driver.Value, error) { return time.Now().Format(dLayout), nil }),
		nd("curtime", 0, func([]driver.Value) (driver.Value, error) { return time.Now().Format(tLayout), nil }),
		nd("utc_timestamp", 0, func([]driver.Value) (driver.Value, error) { return time.Now().UTC().Format(dtLayout), nil }),
		nd("unix_timestamp", -1, fnUnixTimestamp),
		d("from_unixtime", -1, fnFromUnixtime),
		d("date_format", 2, fnDateFormat),
		d("time_format", 2, fnDateFormat),
		d("date_add", 3, fnDateAdd),
		d("extract", 2, fnExtract),
		d("timestampdiff", 3, fnTimestampDiff),
		d("date", 1, dateFn(func(t mtime) driver.Value { return t.dateString() })),
		d("datetime", 1, dateFn(func(t mtime) driver.Value { return t.datetimeString() })),
		d("timestamp", 1, dateFn(func(t mtime) driver.Value { return t.datetimeString() })),
		d("time", 1, fnTime),
		d("year", 1, partFn(func(t mtime) int64 { return int64(t.y) })),
		d("month", 1, partFn(func(t mtime) int64 { return int64(t.mo) })),
		d("day", 1, partFn(func(t mtime) int64 { return int64(t.d) })),
		d("dayofmonth", 1, partFn(func(t mtime) int64 { return int64(t.d) })),
		d("hour", 1, partFn(func(t mtime) int64 { return int64(t.h) })),
		d("minute", 1, partFn(func(t mtime) int64 { return int64(t.mi) })),
		d("second", 1, partFn(func(t mtime) int64 { return int64(t.s) })),
		d("microsecond", 1, partFn(func(t mtime) int64 { return int64(t.us) })),
		d("quarter", 1, partFn(func(t mtime) int64 { return int64((t.mo + 2) / 3) })),
		d("dayofweek", 1, realDateFn(func(t mtime) driver.Value { return int64(t.weekday()) + 1 })),
		d("weekday", 1, realDateFn(func(t mtime) driver.Value { return int64((t.weekday() + 6) % 7) })),
		d("dayofyear", 1, realDateFn(func(t mtime) driver.Value { return int64(t.daynr() - calcDaynr(t.y, 1, 1) + 1) })),
		d("dayname", 1, realDateFn(func(t mtime) driver.Value { return time.Weekday(t.weekday()).String() })),
		d("monthname", 1, realDateFn(func(t mtime) driver.Value { return time.Month(t.mo).String() })),
		d("last_day", 1, realDateFn(func(t mtime) driver.Value {
			return time.Date(t.y, time.Month(t.mo)+1, 0, 0, 0, 0, 0, time.UTC).Format(dLayout)
		})),
		d("to_days", 1, realDateFn(func(t mtime) driver.Value { return int64(t.daynr()) })),
		d("to_seconds", 1, realDateFn(func(t mtime) driver.Value {
			return int64(t.daynr())*86400 + int64(t.h*3600+t.mi*60+t.s)
		})),
		d("from_days", 1, fnFromDays),
		d("datediff", 2, fnDateDiff),
		d("week", -1, fnWeek),
		d("weekofyear", 1, func(a []driver.Value) (driver.Value, error) { return fnWeek([]driver.Value{a[0], int64(3)}) }),
		d("yearweek", -1, fnYearWeek),
		d("str_to_date", 2, fnStrToDate),
		d("makedate", 2, fnMakedate),
		d("sec_to_time", 1, fnSecToTime),
		d("time_to_sec", 1, fnTimeToSec),
		d("timediff", 2, fnTimeDiff),
		d("addtime", 2, func(a []driver.Value) (driver.Value, error) { return addTime(a, 1) }),
		d("subtime", 2, func(a []driver.Value) (driver.Value, error) { return addTime(a, -1) }),
		d("period_add", 2, fnPeriodAdd),
		d("period_diff", 2, fnPeriodDiff),
		d("convert_tz", 3, fnConvertTZ),
		nd("get_lock", 2, func([]driver.Value) (driver.Value, error) { return int64(1), nil }),
		nd("release_lock", 1, func([]driver.Value) (driver.Value, error) { return int64(1), nil }),
		nd("is_free_lock", 1, func([]driver.Value) (driver.Value, error) { return int64(1), nil }),
		nd("is_used_lock", 1, func([]driver.Value) (driver.Value, error) { return nil, nil }),
	}
	return fs
}

const (
	dtLayout = "2006-01-02 15:04:05"
	dLayout  = "2006-01-02"
	tLayout  = "15:04:05"
)

// ---- value helpers ----

// ToString is the text of a value in a string context, as the Go
// functions (CONCAT, …) see their arguments: NULL as "", integers in
// decimal, floats by formatFloat (1e20, not Go's 1e+20), booleans as 1
// and 0, times as DATETIME text. The wire front stores SET values with it.
func ToString(v driver.Value) string { return toString(v) }

func toString(v driver.Value) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return formatFloat(x)
	case bool:
		if x {
			return "1"
		}
		return "0"
	case time.Time:
		if x.Nanosecond() != 0 {
			return x.Format("2006-01-02 15:04:05.999999")
		}
		return x.Format(dtLayout)
	}
	return fmt.Sprint(v)
}

func toBytes(v driver.Value) []byte {
	if b, ok := v.([]byte); ok {
		return b
	}
	return []byte(toString(v))
}

// formatFloat prints a double the way MySQL does (shortest round-trip).
func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	return strings.Replace(s, "e+", "e", 1)
}

func formatInt(i int64) string { return strconv.FormatInt(i, 10) }

// toFloat converts like MySQL's numeric context: leading numeric prefix of
// strings, 0 otherwise.
func toFloat(v driver.Value) (float64, bool) {
	switch x := v.(type) {
	case nil:
		return 0, false
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	s := strings.TrimSpace(toString(v))
	end := 0
	seenDigit, seenDot, seenE := false, false, false
	for end < len(s) {
		c := s[end]
		switch {
		case c >= '0' && c <= '9':
			seenDigit = true
		case (c == '+' || c == '-') && (end == 0 || s[end-1] == 'e' || s[end-1] == 'E'):
		case c == '.' && !seenDot && !seenE:
			seenDot = true
		case (c == 'e' || c == 'E') && seenDigit && !seenE:
			seenE = true
		default:
			goto done
		}
		end++
	}
done:
	for end > 0 {
		if f, err := strconv.ParseFloat(s[:end], 64); err == nil {
			return f, true
		}
		end--
	}
	return 0, true
}

func toInt(v driver.Value) (int64, bool) {
	switch x := v.(type) {
	case nil:
		return 0, false
	case int64:
		return x, true
	}
	f, ok := toFloat(v)
	if !ok {
		return 0, false
	}
	return int64(math.Round(f)), true
}

func anyNil(a []driver.Value) bool {
	for _, v := range a {
		if v == nil {
			return true
		}
	}
	return false
}

// ---- string functions ----

func fnConcat(a []driver.Value) (driver.Value, error) {
	parts := make([]string, len(a))
	n := int64(0)
	for i, v := range a {
		if v == nil {
			return nil, nil
		}
		parts[i] = toString(v)
		n += int64(len(parts[i]))
	}
	if !fitsLength(n) {
		return nil, tooLong("concat")
	}
	return strings.Join(parts, ""), nil
}

func fnConcatWS(a []driver.Value) (driver.Value, error) {
	if len(a) == 0 || a[0] == nil {
		return nil, nil
	}
	sep := toString(a[0])
	var parts []string
	n := int64(0)
	for _, v := range a[1:] {
		if v != nil {
			if len(parts) > 0 {
				n += int64(len(sep))
			}
			parts = append(parts, toString(v))
			n += int64(len(parts[len(parts)-1]))
		}
	}
	if !fitsLength(n) {
		return nil, tooLong("concat_ws")
	}
	return strings.Join(parts, sep), nil
}

func fnField(a []driver.Value) (driver.Value, error) {
	if len(a) < 2 || a[0] == nil {
		return int64(0), nil
	}
	_, num := a[0].(int64)
	if _, f := a[0].(float64); f {
		num = true
	}
	for i, v := range a[1:] {
		if v == nil {
			continue
		}
		if num {
			x, _ := toFloat(a[0])
			y, _ := toFloat(v)
			if x == y {
				return int64(i + 1), nil
			}
		} else if strings.EqualFold(toString(a[0]), toString(v)) {
			return int64(i + 1), nil
		}
	}
	return int64(0), nil
}

func fnElt(a []driver.Value) (driver.Value, error) {
	if len(a) < 2 || a[0] == nil {
		return nil, nil
	}
	n, _ := toInt(a[0])
	if n < 1 || int(n) >= len(a) {
		return nil, nil
	}
	return a[n], nil
}

func fnLocate(a []driver.Value) (driver.Value, error) {
	if len(a) < 2 || len(a) > 3 {
		return nil, fmt.Errorf("LOCATE: wrong number of arguments")
	}
	if anyNil(a) {
		return nil, nil
	}
	sub := []rune(strings.ToLower(toString(a[0])))
	str := []rune(strings.ToLower(toString(a[1])))
	start := int64(1)
	if len(a) == 3 {
		start, _ = toInt(a[2])
	}
	if start < 1 || start > int64(len(str))+1 {
		return int64(0), nil
	}
	i := strings.Index(string(str[start-1:]), string(sub))
	if i < 0 {
		return int64(0), nil
	}
	return start + int64(utf8.RuneCountInString(string(str[start-1:])[:i])), nil
}

func fnSubstring(a []driver.Value) (driver.Value, error) {
	if len(a) < 2 || len(a) > 3 {
		return nil, fmt.Errorf("SUBSTRING: wrong number of arguments")
	}
	if anyNil(a) {
		return nil, nil
	}
	r := []rune(toString(a[0]))
	pos, _ := toInt(a[1])
	n := int64(len(r))
	var start int64
	switch {
	case pos > 0:
		start = pos - 1
	case pos < 0:
		start = n + pos
		if start < 0 {
			return "", nil
		}
	default:
		return "", nil
	}
	if start >= n {
		return "", nil
	}
	end := n
	if len(a) == 3 {
		l, _ := toInt(a[2])
		if l <= 0 {
			return "", nil
		}
		if start+l < end {
			end = start + l
		}
	}
	return string(r[start:end]), nil
}

func fnSubstringIndex(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	s, delim := toString(a[0]), toString(a[1])
	n, _ := toInt(a[2])
	if delim == "" || n == 0 {
		return "", nil
	}
	parts := strings.Split(s, delim)
	if n > 0 {
		if int(n) >= len(parts) {
			return s, nil
		}
		return strings.Join(parts[:n], delim), nil
	}
	if int(-n) >= len(parts) {
		return s, nil
	}
	return strings.Join(parts[len(parts)+int(n):], delim), nil
}

func fnLeft(a []driver.Value) (driver.Value, error)  { return leftRight(a, false) }
func fnRight(a []driver.Value) (driver.Value, error) { return leftRight(a, true) }

// leftRight is LEFT(s, n) and RIGHT(s, n): the first or last n characters.
func leftRight(a []driver.Value, right bool) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	r := []rune(toString(a[0]))
	n, _ := toInt(a[1])
	if n <= 0 {
		return "", nil
	}
	if int(n) > len(r) {
		n = int64(len(r))
	}
	if right {
		return string(r[len(r)-int(n):]), nil
	}
	return string(r[:n]), nil
}

func pad(a []driver.Value, left bool) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	name := "rpad"
	if left {
		name = "lpad"
	}
	n, _ := toInt(a[1])
	if n < 0 {
		return nil, nil
	}
	if !fitsLength(n) { // n characters are at least n bytes
		return nil, tooLong(name)
	}
	str := toString(a[0])
	if prefix, ok := runePrefix(str, int(n)); ok {
		return prefix, nil // n characters or fewer: truncated
	}
	ps := toString(a[2])
	pn := utf8.RuneCountInString(ps)
	if pn == 0 {
		return nil, nil
	}
	// The result's bytes: the string's, whole rounds of the padding, and
	// the start of one more; built in place (no rune slices, which cost
	// four bytes a character).
	k := int(n) - utf8.RuneCountInString(str)
	part, _ := runePrefix(ps, k%pn)
	size := int64(len(str)) + int64(k/pn)*int64(len(ps)) + int64(len(part))
	if !fitsLength(size) {
		return nil, tooLong(name)
	}
	var b strings.Builder
	b.Grow(int(size))
	if !left {
		b.WriteString(str)
	}
	for range k / pn {
		b.WriteString(ps)
	}
	b.WriteString(part)
	if left {
		b.WriteString(str)
	}
	return b.String(), nil
}

// runePrefix is s's first n characters, and whether s has at least n.
func runePrefix(s string, n int) (string, bool) {
	i := 0
	for c := 0; c < n; c++ {
		if i >= len(s) {
			return s, false
		}
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	return s[:i], true
}

func fnLpad(a []driver.Value) (driver.Value, error) { return pad(a, true) }
func fnRpad(a []driver.Value) (driver.Value, error) { return pad(a, false) }

func fnRepeat(a []driver.Value) (driver.Value, error) { return repeat("repeat", a) }

func repeat(name string, a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	n, _ := toInt(a[1])
	s := toString(a[0])
	if n <= 0 || s == "" {
		return "", nil
	}
	if n > maxLength.Load() || !fitsLength(int64(len(s))*n) {
		return nil, tooLong(name)
	}
	return strings.Repeat(s, int(n)), nil
}

func fnSpace(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	return repeat("space", []driver.Value{" ", a[0]})
}

func fnReverse(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	r := []rune(toString(a[0]))
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r), nil
}

func fnFindInSet(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	needle, list := toString(a[0]), toString(a[1])
	if list == "" || strings.Contains(needle, ",") {
		return int64(0), nil
	}
	for i, p := range strings.Split(list, ",") {
		if strings.EqualFold(p, needle) {
			return int64(i + 1), nil
		}
	}
	return int64(0), nil
}

func fnStrcmp(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	return int64(strings.Compare(strings.ToLower(toString(a[0])), strings.ToLower(toString(a[1])))), nil
}

func fnInsert(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	r := []rune(toString(a[0]))
	pos, _ := toInt(a[1])
	l, _ := toInt(a[2])
	if pos < 1 || pos > int64(len(r)) {
		return string(r), nil
	}
	end := pos - 1 + l
	if l < 0 || end > int64(len(r)) {
		end = int64(len(r))
	}
	head, tail, mid := string(r[:pos-1]), string(r[end:]), toString(a[3])
	if !fitsLength(int64(len(head) + len(mid) + len(tail))) {
		return nil, tooLong("insert")
	}
	return head + mid + tail, nil
}

func fnQuote(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return "NULL", nil
	}
	s := toString(a[0])
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'", nil
}

var reCache sync.Map // pattern → *regexp.Regexp

func compileRE(p string) (*regexp.Regexp, error) {
	if v, ok := reCache.Load(p); ok {
		return v.(*regexp.Regexp), nil
	}
	// MySQL compares case-insensitively under the default collations.
	re, err := regexp.Compile("(?i)" + p)
	if err != nil {
		return nil, fmt.Errorf("Got error '%v' from regexp", err)
	}
	reCache.Store(p, re)
	return re, nil
}

func fnRegexp(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	re, err := compileRE(toString(a[1]))
	if err != nil {
		return nil, err
	}
	if re.MatchString(toString(a[0])) {
		return int64(1), nil
	}
	return int64(0), nil
}

func fnRegexpReplace(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	re, err := compileRE(toString(a[1]))
	if err != nil {
		return nil, err
	}
	src, repl := toString(a[0]), toString(a[2])
	// The replacement is literal; stop building once the result is too
	// long (an empty pattern matches between every two characters).
	size, over := int64(len(src)), false
	out := re.ReplaceAllStringFunc(src, func(m string) string {
		if over {
			return ""
		}
		if size += int64(len(repl) - len(m)); !fitsLength(size) {
			over = true
			return ""
		}
		return repl
	})
	if over {
		return nil, tooLong("regexp_replace")
	}
	return out, nil
}

func fnRegexpSubstr(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	re, err := compileRE(toString(a[1]))
	if err != nil {
		return nil, err
	}
	loc := re.FindStringIndex(toString(a[0]))
	if loc == nil {
		return nil, nil
	}
	return toString(a[0])[loc[0]:loc[1]], nil
}

func hashFn(h func([]byte) string) func([]driver.Value) (driver.Value, error) {
	return func(a []driver.Value) (driver.Value, error) {
		if a[0] == nil {
			return nil, nil
		}
		return h(toBytes(a[0])), nil
	}
}

func fnSha2(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	b := toBytes(a[0])
	n, _ := toInt(a[1])
	switch n {
	case 0, 256:
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:]), nil
	case 224:
		s := sha256.Sum224(b)
		return hex.EncodeToString(s[:]), nil
	case 384:
		s := sha512.Sum384(b)
		return hex.EncodeToString(s[:]), nil
	case 512:
		s := sha512.Sum512(b)
		return hex.EncodeToString(s[:]), nil
	}
	return nil, nil
}

func fnCrc32(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	return int64(crc32.ChecksumIEEE(toBytes(a[0]))), nil
}

func fnHex(a []driver.Value) (driver.Value, error) {
	switch v := a[0].(type) {
	case nil:
		return nil, nil
	case int64:
		return strings.ToUpper(strconv.FormatUint(uint64(v), 16)), nil
	case float64:
		return strings.ToUpper(strconv.FormatUint(uint64(int64(math.Round(v))), 16)), nil
	}
	b := toBytes(a[0])
	if !fitsLength(2 * int64(len(b))) {
		return nil, tooLong("hex")
	}
	return strings.ToUpper(hex.EncodeToString(b)), nil
}

func fnUnhex(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	s := toString(a[0])
	if len(s)%2 == 1 {
		s = "0" + s
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, nil
	}
	return b, nil
}

func convBase(v driver.Value, base int) (driver.Value, error) {
	if v == nil {
		return nil, nil
	}
	n, _ := toInt(v)
	return strconv.FormatUint(uint64(n), base), nil
}

func fnConv(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	from, _ := toInt(a[1])
	to, _ := toInt(a[2])
	if from < 0 {
		from = -from
	}
	neg := to < 0
	if neg {
		to = -to
	}
	if from < 2 || from > 36 || to < 2 || to > 36 {
		return nil, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(toString(a[0])), int(from), 64)
	if err != nil {
		return "0", nil
	}
	if neg {
		return strings.ToUpper(strconv.FormatInt(n, int(to))), nil
	}
	return strings.ToUpper(strconv.FormatUint(uint64(n), int(to))), nil
}

func fnOrd(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	b := toBytes(a[0])
	if len(b) == 0 {
		return int64(0), nil
	}
	_, size := utf8.DecodeRune(b)
	var n int64
	for _, c := range b[:size] {
		n = n*256 + int64(c)
	}
	return n, nil
}

func fnSoundex(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	codes := "01230120022455012623010202"
	var out []byte
	var last byte
	for _, r := range strings.ToUpper(toString(a[0])) {
		if r < 'A' || r > 'Z' {
			continue
		}
		c := codes[r-'A']
		if len(out) == 0 {
			out = append(out, byte(r))
			last = c
			continue
		}
		if c != '0' && c != last {
			out = append(out, c)
		}
		if r != 'H' && r != 'W' {
			last = c
		}
	}
	if len(out) == 0 {
		return "", nil
	}
	for len(out) < 4 {
		out = append(out, '0')
	}
	return string(out), nil
}

func fnFormat(a []driver.Value) (driver.Value, error) {
	if len(a) < 2 || anyNil(a[:2]) {
		return nil, nil
	}
	f, _ := toFloat(a[0])
	d, _ := toInt(a[1])
	if d < 0 {
		d = 0
	}
	if d > 30 {
		d = 30
	}
	s := strconv.FormatFloat(math.Abs(f), 'f', int(d), 64)
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i:]
	}
	var b strings.Builder
	if f < 0 && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	b.WriteString(frac)
	return b.String(), nil
}

func fnTruncate(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	d, _ := toInt(a[1])
	if i, ok := a[0].(int64); ok {
		if d >= 0 {
			return i, nil
		}
		p := int64(math.Pow10(int(-d)))
		return i / p * p, nil
	}
	f, _ := toFloat(a[0])
	p := math.Pow10(int(d))
	return math.Trunc(f*p) / p, nil
}

// fnCastInt is CAST(x AS SIGNED): the leading integer of a string, as MySQL.
func fnCastInt(a []driver.Value) (driver.Value, error) {
	switch v := a[0].(type) {
	case nil:
		return nil, nil
	case int64:
		return v, nil
	case float64:
		return int64(math.Round(v)), nil
	}
	s := strings.TrimSpace(toString(a[0]))
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end < len(s) && s[end] == '.' {
		f, _ := toFloat(s)
		return int64(math.Round(f)), nil
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil {
		if u, err := strconv.ParseUint(s[:end], 10, 64); err == nil {
			return int64(u), nil
		}
		return int64(0), nil
	}
	return n, nil
}

func mathFn(f func(float64) float64) func([]driver.Value) (driver.Value, error) {
	return func(a []driver.Value) (driver.Value, error) {
		if a[0] == nil {
			return nil, nil
		}
		if i, ok := a[0].(int64); ok {
			r := f(float64(i))
			if r == math.Trunc(r) && math.Abs(r) < 1<<53 {
				if f(2.5) == 2 || f(2.5) == 3 { // ceil/floor keep integers
					return int64(r), nil
				}
			}
		}
		x, _ := toFloat(a[0])
		r := f(x)
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return nil, nil
		}
		return r, nil
	}
}

func fnLog(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	b, _ := toFloat(a[0])
	x, _ := toFloat(a[1])
	if b <= 0 || b == 1 || x <= 0 {
		return nil, nil
	}
	return math.Log(x) / math.Log(b), nil
}

func fnPow(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	x, _ := toFloat(a[0])
	y, _ := toFloat(a[1])
	r := math.Pow(x, y)
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return nil, nil
	}
	return r, nil
}

func fnMod(a []driver.Value) (driver.Value, error) {
	if anyNil(a) {
		return nil, nil
	}
	xi, ok1 := a[0].(int64)
	yi, ok2 := a[1].(int64)
	if ok1 && ok2 {
		if yi == 0 {
			return nil, nil
		}
		return xi % yi, nil
	}
	x, _ := toFloat(a[0])
	y, _ := toFloat(a[1])
	if y == 0 {
		return nil, nil
	}
	return math.Mod(x, y), nil
}

func fnSign(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	f, _ := toFloat(a[0])
	switch {
	case f > 0:
		return int64(1), nil
	case f < 0:
		return int64(-1), nil
	}
	return int64(0), nil
}

func fnInetAton(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	parts := strings.Split(toString(a[0]), ".")
	if len(parts) > 4 {
		return nil, nil
	}
	var n int64
	for _, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 255 {
			return nil, nil
		}
		n = n*256 + int64(v)
	}
	return n, nil
}

func fnInetNtoa(a []driver.Value) (driver.Value, error) {
	if a[0] == nil {
		return nil, nil
	}
	n, _ := toInt(a[0])
	if n < 0 || n > math.MaxUint32 {
		return nil, nil
	}
	return fmt.Sprintf("%d.%d.%d.%d", n>>24&255, n>>16&255, n>>8&255, n&255), nil
}

func fnRand(a []driver.Value) (driver.Value, error) {
	if len(a) > 0 && a[0] != nil {
		seed, _ := toInt(a[0])
		return mrand.New(mrand.NewPCG(uint64(seed), 0)).Float64(), nil
	}
	return mrand.Float64(), nil
}

func fnUUID([]driver.Value) (driver.Value, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("uuid: %w", err)
	}
	// version 1 layout is what MySQL returns; a random v4 is as unique
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

var _ = binary.BigEndian
