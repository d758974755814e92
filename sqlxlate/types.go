package sqlxlate

import (
	"strconv"
	"strings"

	querypb "vitess.io/vitess/go/vt/proto/query"
)

// MySQL column flags (include/mysql_com.h) used in result metadata.
const (
	flagNotNull       = 1
	flagPriKey        = 2
	flagUniqueKey     = 4
	flagMultipleKey   = 8
	flagBlob          = 16
	flagUnsigned      = 32
	flagZerofill      = 64
	flagBinary        = 128
	flagEnum          = 256
	flagAutoIncrement = 512
	flagTimestamp     = 1024
	flagSet           = 2048
	flagNum           = 32768
)

// Charset ids for result metadata.
const (
	charsetUTF8MB4 = 255 // utf8mb4_0900_ai_ci
	charsetBinary  = 63
)

// FieldType maps a declared SQLite column type, as this package writes DDL
// (e.g. "BIGINT UNSIGNED(20)", "VARCHAR(255)", "DATETIME TEXT",
// "LONGTEXT", "INTEGER"), to MySQL result metadata. Unknown or empty
// declarations give VARCHAR so any value can be sent as text.
func FieldType(decltype string) (typ querypb.Type, flags uint32, length uint32) {
	d := strings.ToUpper(strings.TrimSpace(decltype))
	n := -1
	if i := strings.IndexByte(d, '('); i >= 0 {
		rest := ""
		if j := strings.IndexByte(d[i:], ')'); j > 0 {
			inner := d[i+1 : i+j]
			if k := strings.IndexByte(inner, ','); k >= 0 {
				inner = inner[:k]
			}
			n, _ = strconv.Atoi(strings.TrimSpace(inner))
			rest = d[i+j+1:]
		}
		d = strings.TrimSpace(d[:i] + " " + rest)
	}
	words := strings.Fields(d)
	base := ""
	for i, w := range words {
		if i == 0 {
			base = w
		} else if w == "UNSIGNED" {
			flags |= flagUnsigned
		}
	}
	lenOr := func(def int) uint32 {
		if n > 0 {
			return uint32(n)
		}
		return uint32(def)
	}
	switch base {
	case "TINYINT", "BOOL", "BOOLEAN":
		return querypb.Type_INT8 | querypb.Type(0), flags | flagNum, lenOr(4)
	case "SMALLINT":
		return querypb.Type_INT16, flags | flagNum, lenOr(6)
	case "MEDIUMINT":
		return querypb.Type_INT24, flags | flagNum, lenOr(9)
	case "INT":
		return querypb.Type_INT32, flags | flagNum, lenOr(11)
	case "INTEGER", "BIGINT":
		return querypb.Type_INT64, flags | flagNum, lenOr(20)
	case "FLOAT":
		return querypb.Type_FLOAT32, flags | flagNum, 12
	case "DOUBLE", "REAL":
		return querypb.Type_FLOAT64, flags | flagNum, 22
	case "DECIMAL", "NUMERIC":
		return querypb.Type_DECIMAL, flags | flagNum, lenOr(10) + 2
	case "YEAR":
		return querypb.Type_YEAR, flags | flagUnsigned | flagNum, 4
	case "BIT":
		return querypb.Type_BIT, flags | flagUnsigned, lenOr(1)
	case "DATE":
		return querypb.Type_DATE, flags | flagBinary, 10
	case "DATETIME":
		return querypb.Type_DATETIME, flags | flagBinary, 19
	case "TIMESTAMP":
		return querypb.Type_TIMESTAMP, flags | flagBinary | flagTimestamp, 19
	case "TIME":
		return querypb.Type_TIME, flags | flagBinary, 10
	case "CHAR":
		return querypb.Type_CHAR, flags, lenOr(1) * 4
	case "VARCHAR":
		return querypb.Type_VARCHAR, flags, lenOr(255) * 4
	case "TINYTEXT":
		return querypb.Type_TEXT, flags | flagBlob, 255
	case "TEXT":
		return querypb.Type_TEXT, flags | flagBlob, 65535
	case "MEDIUMTEXT":
		return querypb.Type_TEXT, flags | flagBlob, 16777215
	case "LONGTEXT", "JSON":
		return querypb.Type_TEXT, flags | flagBlob, 4294967295
	case "ENUM":
		return querypb.Type_CHAR, flags | flagEnum, lenOr(255) * 4
	case "SET":
		return querypb.Type_CHAR, flags | flagSet, lenOr(255) * 4
	case "BINARY":
		return querypb.Type_BINARY, flags | flagBinary, lenOr(1)
	case "VARBINARY":
		return querypb.Type_VARBINARY, flags | flagBinary, lenOr(255)
	case "TINYBLOB":
		return querypb.Type_BLOB, flags | flagBlob | flagBinary, 255
	case "BLOB":
		return querypb.Type_BLOB, flags | flagBlob | flagBinary, 65535
	case "MEDIUMBLOB":
		return querypb.Type_BLOB, flags | flagBlob | flagBinary, 16777215
	case "LONGBLOB":
		return querypb.Type_BLOB, flags | flagBlob | flagBinary, 4294967295
	}
	return querypb.Type_VARCHAR, 0, 65535
}

// colType is a parsed MySQL column type.
type colType struct {
	base      string // lower-case: bigint, varchar, longtext, enum…
	length    int    // -1 when absent
	scale     int    // -1 when absent
	unsigned  bool
	zerofill  bool
	enumVals  []string
	charset   string
	collation string
	binary    bool // charset binary / BINARY attribute
}

func (c colType) isInt() bool {
	switch c.base {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "bool", "boolean", "year", "bit":
		return true
	}
	return false
}

func (c colType) isText() bool {
	switch c.base {
	case "char", "varchar", "nchar", "nvarchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json":
		return true
	}
	return false
}

func (c colType) isBlob() bool {
	switch c.base {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return true
	}
	return false
}

func (c colType) isNumeric() bool {
	switch c.base {
	case "float", "double", "real", "decimal", "numeric", "dec", "fixed", "double precision":
		return true
	}
	return c.isInt()
}

func (c colType) isTemporal() bool {
	switch c.base {
	case "date", "datetime", "timestamp", "time":
		return true
	}
	return false
}

// mysqlString is the type as SHOW COLUMNS prints it.
func (c colType) mysqlString() string {
	var b strings.Builder
	base := c.base
	switch base {
	case "integer":
		base = "int"
	case "bool", "boolean":
		return "tinyint(1)"
	case "dec", "fixed", "numeric":
		base = "decimal"
	case "double precision":
		base = "double"
	}
	b.WriteString(base)
	switch {
	case base == "enum" || base == "set":
		b.WriteString("(")
		for i, v := range c.enumVals {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("'" + strings.ReplaceAll(v, "'", "''") + "'")
		}
		b.WriteString(")")
	case c.length >= 0 && c.scale >= 0:
		b.WriteString("(" + strconv.Itoa(c.length) + "," + strconv.Itoa(c.scale) + ")")
	case c.length >= 0:
		b.WriteString("(" + strconv.Itoa(c.length) + ")")
	case base == "decimal":
		b.WriteString("(10,0)")
	}
	if c.unsigned {
		b.WriteString(" unsigned")
	}
	if c.zerofill {
		b.WriteString(" zerofill")
	}
	return b.String()
}

// sqliteDecl is the SQLite declared type: the MySQL base type first (so
// FieldType can recover it), then words that give SQLite the right
// affinity, then (n) last as SQLite requires.
func (c colType) sqliteDecl() string {
	base := strings.ToUpper(c.base)
	suffix := ""
	switch c.base {
	case "integer":
		base = "INT"
	case "bool", "boolean":
		return "TINYINT(1)"
	case "dec", "fixed", "numeric":
		base = "DECIMAL"
	case "double precision":
		base = "DOUBLE"
	case "date", "datetime", "timestamp", "time", "enum", "set", "json":
		suffix = " TEXT" // TEXT affinity; also keeps modernc from making time.Time
	case "binary", "varbinary":
		suffix = " BLOB"
	case "year", "bit":
		suffix = " INTEGER"
	}
	s := base
	if c.unsigned {
		s += " UNSIGNED"
	}
	s += suffix
	switch {
	case c.base == "enum" || c.base == "set":
	case c.length >= 0 && c.scale >= 0:
		s += "(" + strconv.Itoa(c.length) + "," + strconv.Itoa(c.scale) + ")"
	case c.length >= 0:
		s += "(" + strconv.Itoa(c.length) + ")"
	}
	return s
}

// implicitDefault is the value MySQL (non-strict, as WordPress runs it)
// stores in a NOT NULL column an INSERT leaves out.
func (c colType) implicitDefault() string {
	switch {
	case c.isNumeric():
		return "0"
	case c.base == "datetime" || c.base == "timestamp":
		return "'0000-00-00 00:00:00'"
	case c.base == "date":
		return "'0000-00-00'"
	case c.base == "time":
		return "'00:00:00'"
	case c.base == "enum" && len(c.enumVals) > 0:
		return quoteString(c.enumVals[0])
	case c.isBlob():
		return "X''"
	}
	return "''"
}

// parseColType parses a MySQL type string as stored in the catalog.
func parseColType(s string) colType {
	c := colType{length: -1, scale: -1}
	s = strings.TrimSpace(strings.ToLower(s))
	if i := strings.IndexByte(s, '('); i >= 0 {
		j := strings.LastIndexByte(s, ')')
		if j < i {
			j = len(s)
		}
		c.base = strings.TrimSpace(s[:i])
		inner := s[i+1 : j]
		rest := ""
		if j < len(s) {
			rest = s[j+1:]
		}
		if c.base == "enum" || c.base == "set" {
			c.enumVals = splitEnum(inner)
		} else {
			parts := strings.Split(inner, ",")
			c.length, _ = strconv.Atoi(strings.TrimSpace(parts[0]))
			if len(parts) > 1 {
				c.scale, _ = strconv.Atoi(strings.TrimSpace(parts[1]))
			}
		}
		s = rest
	} else {
		f := strings.Fields(s)
		if len(f) > 0 {
			c.base = f[0]
			s = strings.Join(f[1:], " ")
		}
	}
	for _, w := range strings.Fields(s) {
		switch w {
		case "unsigned":
			c.unsigned = true
		case "zerofill":
			c.zerofill = true
		}
	}
	return c
}

func splitEnum(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'' && !in:
			in = true
		case ch == '\'' && in:
			if i+1 < len(s) && s[i+1] == '\'' {
				cur.WriteByte('\'')
				i++
			} else {
				in = false
				out = append(out, cur.String())
				cur.Reset()
			}
		case in:
			cur.WriteByte(ch)
		}
	}
	return out
}
