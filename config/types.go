package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// intOrString decodes one raw TOML value (as handed to UnmarshalTOML)
// that may be written as an integer or a string, e.g. 30 or "30s".
func intOrString(data []byte, what string, fromInt func(int64) error, fromString func(string) error) error {
	var m map[string]any
	if err := toml.Unmarshal(append([]byte("v = "), data...), &m); err != nil {
		return fmt.Errorf("invalid value %s", data)
	}
	switch v := m["v"].(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("%s %d must not be negative", what, v)
		}
		return fromInt(v)
	case string:
		return fromString(v)
	}
	return fmt.Errorf("%s must be a number or a string, got %s", what, data)
}

// Duration is a time.Duration written as "30s", "5m", "1h30m" or a bare
// integer number of seconds (the unit PHP's own settings use).
type Duration time.Duration

// UnmarshalTOML implements unstable.Unmarshaler.
func (d *Duration) UnmarshalTOML(data []byte) error {
	return intOrString(data, "duration (\"30s\" or seconds)",
		func(n int64) error { *d = Duration(time.Duration(n) * time.Second); return nil },
		func(s string) error { return d.UnmarshalText([]byte(s)) })
}

// UnmarshalText parses a Go duration string or a number of seconds.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		*d = Duration(time.Duration(n) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q (want e.g. \"30s\", \"5m\")", s)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Size is a byte count written as a number or with a unit: "512K",
// "128MB", "1G", "64KiB" (K/M/G are powers of 1024, as in php.ini).
type Size int64

// UnmarshalTOML implements unstable.Unmarshaler.
func (s *Size) UnmarshalTOML(data []byte) error {
	return intOrString(data, "size (bytes or \"128MB\")",
		func(n int64) error { *s = Size(n); return nil },
		func(v string) error { return s.UnmarshalText([]byte(v)) })
}

// UnmarshalText parses a size with an optional unit.
func (s *Size) UnmarshalText(b []byte) error {
	n, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// ParseSize parses "128MB", "64k", "1GiB" or a bare number of bytes.
func ParseSize(in string) (int64, error) {
	str := strings.ToUpper(strings.TrimSpace(in))
	i := 0
	for i < len(str) && (str[i] >= '0' && str[i] <= '9') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. \"128MB\")", in)
	}
	n, err := strconv.ParseInt(str[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", in, err)
	}
	var mult int64
	switch strings.TrimSpace(str[i:]) {
	case "", "B":
		mult = 1
	case "K", "KB", "KIB":
		mult = 1 << 10
	case "M", "MB", "MIB":
		mult = 1 << 20
	case "G", "GB", "GIB":
		mult = 1 << 30
	case "T", "TB", "TIB":
		mult = 1 << 40
	default:
		return 0, fmt.Errorf("invalid size unit in %q (use K, M, G or T)", in)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", in)
	}
	return n * mult, nil
}

// PHPString renders the size the way php.ini writes it ("128M").
func (s Size) PHPString() string {
	n := int64(s)
	switch {
	case n > 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "G"
	case n > 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "M"
	case n > 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "K"
	}
	return strconv.FormatInt(n, 10)
}
