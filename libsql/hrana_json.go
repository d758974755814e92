package libsql

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Hrana JSON messages (HTTP API v2/v3). Only what the server reads or
// writes is declared; unknown fields are ignored as sqld does.

type pipelineReq struct {
	Baton    *string     `json:"baton"`
	Requests []streamReq `json:"requests"`
}

type streamReq struct {
	Type  string  `json:"type"`
	Stmt  *hStmt  `json:"stmt"`
	Batch *hBatch `json:"batch"`
	SQL   *string `json:"sql"`
	SQLID *int32  `json:"sql_id"`
}

type hStmt struct {
	SQL       *string    `json:"sql"`
	SQLID     *int32     `json:"sql_id"`
	Args      []hValue   `json:"args"`
	NamedArgs []namedArg `json:"named_args"`
	WantRows  *bool      `json:"want_rows"`
}

type namedArg struct {
	Name  string `json:"name"`
	Value hValue `json:"value"`
}

type hBatch struct {
	Steps []batchStep `json:"steps"`
}

type batchStep struct {
	Condition *batchCond `json:"condition"`
	Stmt      hStmt      `json:"stmt"`
}

type batchCond struct {
	Type  string      `json:"type"`
	Step  *int        `json:"step"`
	Cond  *batchCond  `json:"cond"`
	Conds []batchCond `json:"conds"`
}

type cursorReq struct {
	Baton *string `json:"baton"`
	Batch *hBatch `json:"batch"`
}

// hValue is one SQLite value: nil, int64, float64, string or []byte.
type hValue struct{ v any }

func (h *hValue) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type   string          `json:"type"`
		Value  json.RawMessage `json:"value"`
		Base64 *string         `json:"base64"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	switch raw.Type {
	case "null":
		h.v = nil
	case "integer":
		s := string(raw.Value)
		if len(s) >= 2 && s[0] == '"' {
			if err := json.Unmarshal(raw.Value, &s); err != nil {
				return err
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("integer value %q: %w", s, err)
		}
		h.v = n
	case "float":
		var f float64
		if err := json.Unmarshal(raw.Value, &f); err != nil {
			return fmt.Errorf("float value: %w", err)
		}
		h.v = f
	case "text":
		var s string
		if err := json.Unmarshal(raw.Value, &s); err != nil {
			return fmt.Errorf("text value: %w", err)
		}
		h.v = s
	case "blob":
		if raw.Base64 == nil {
			return errors.New("blob value without base64")
		}
		b, err := decodeBase64(*raw.Base64)
		if err != nil {
			return fmt.Errorf("blob value: %w", err)
		}
		h.v = b
	default:
		return fmt.Errorf("unknown value type %q", raw.Type)
	}
	return nil
}

// decodeBase64 accepts standard base64 with or without padding (the JS
// client pads, sqld and the Go client do not).
func decodeBase64(s string) ([]byte, error) {
	s = string(bytes.TrimRight([]byte(s), "="))
	return base64.RawStdEncoding.DecodeString(s)
}

func (h hValue) MarshalJSON() ([]byte, error) { return appendValue(nil, h.v), nil }

// appendValue writes v as a Hrana JSON value: integers as decimal strings,
// blobs as unpadded base64.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, `{"type":"null"}`...)
	case int64:
		b = append(b, `{"type":"integer","value":"`...)
		b = strconv.AppendInt(b, x, 10)
		return append(b, `"}`...)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			// JSON has no NaN/Inf; SQLite turns NaN into NULL anyway.
			return append(b, `{"type":"null"}`...)
		}
		b = append(b, `{"type":"float","value":`...)
		b = strconv.AppendFloat(b, x, 'g', -1, 64)
		return append(b, '}')
	case string:
		b = append(b, `{"type":"text","value":`...)
		return append(appendJSONString(b, x), '}')
	case []byte:
		b = append(b, `{"type":"blob","base64":"`...)
		b = base64.RawStdEncoding.AppendEncode(b, x)
		return append(b, `"}`...)
	case bool:
		if x {
			return appendValue(b, int64(1))
		}
		return appendValue(b, int64(0))
	}
	return appendValue(b, textOf(v))
}

// textOf is the text SQLite would have returned for a value the driver
// turned into something else.
func textOf(v any) string {
	if t, ok := v.(time.Time); ok {
		return formatTime(t)
	}
	return fmt.Sprint(v)
}

// formatTime undoes the driver's parsing of DATE/DATETIME/TIMESTAMP text
// (SQLite's own format; the original spelling is not recoverable).
func formatTime(t time.Time) string {
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
		return t.Format("2006-01-02")
	}
	if t.Nanosecond() != 0 {
		return t.Format("2006-01-02 15:04:05.999999999")
	}
	return t.Format("2006-01-02 15:04:05")
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// hError is a Hrana error object.
type hError struct {
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
}

// appendStmtResult writes a StmtResult.
func appendStmtResult(b []byte, r *execResult, replIndex *uint64) []byte {
	b = append(b, `{"cols":`...)
	b = appendCols(b, r.cols)
	b = append(b, `,"rows":[`...)
	for i, row := range r.rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, v := range row {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, v)
		}
		b = append(b, ']')
	}
	b = append(b, `],"affected_row_count":`...)
	b = strconv.AppendInt(b, r.affected, 10)
	b = append(b, `,"last_insert_rowid":`...)
	if r.hasLastID {
		b = append(b, '"')
		b = strconv.AppendInt(b, r.lastID, 10)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	b = appendReplIndex(b, replIndex)
	b = append(b, `,"rows_read":`...)
	b = strconv.AppendInt(b, int64(len(r.rows)), 10)
	b = append(b, `,"rows_written":`...)
	b = strconv.AppendInt(b, r.affected, 10)
	b = append(b, `,"query_duration_ms":`...)
	b = strconv.AppendFloat(b, float64(r.dur.Microseconds())/1000, 'f', -1, 64)
	return append(b, '}')
}

func appendReplIndex(b []byte, replIndex *uint64) []byte {
	b = append(b, `,"replication_index":`...)
	if replIndex == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = strconv.AppendUint(b, *replIndex, 10)
	return append(b, '"')
}

func appendCols(b []byte, cols []column) []byte {
	b = append(b, '[')
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, c.name)
		b = append(b, `,"decltype":`...)
		if c.decltype == "" {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, c.decltype)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendError(b []byte, e *sqlError) []byte {
	m, _ := json.Marshal(hError{Message: e.msg, Code: e.code})
	return append(b, m...)
}
