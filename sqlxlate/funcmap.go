package sqlxlate

import (
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"
)

// goFuncs are MySQL functions implemented in Go (functions.go) and
// registered as mysql_<name>; the translator calls them by that name so
// SQLite's own functions of the same name keep their meaning.
var goFuncs = map[string]bool{
	"concat": true, "concat_ws": true, "field": true, "substring_index": true,
	"rand": true, "unix_timestamp": true, "from_unixtime": true, "date_format": true,
	"time_format": true, "year": true, "month": true, "day": true, "dayofmonth": true,
	"hour": true, "minute": true, "second": true, "dayofweek": true, "dayofyear": true,
	"weekday": true, "week": true, "yearweek": true, "quarter": true, "monthname": true,
	"dayname": true, "last_day": true, "to_days": true, "from_days": true, "datediff": true,
	"date": true, "time": true, "timestamp": true, "str_to_date": true, "md5": true,
	"sha1": true, "sha": true, "sha2": true, "crc32": true, "uuid": true, "hex": true,
	"unhex": true, "reverse": true, "repeat": true, "space": true, "lpad": true,
	"rpad": true, "find_in_set": true, "format": true, "truncate": true, "left": true,
	"right": true, "mid": true, "ceil": true, "ceiling": true, "floor": true,
	"pow": true, "power": true, "sqrt": true, "ln": true, "log2": true, "log10": true,
	"exp": true, "pi": true, "mod": true, "sign": true, "inet_aton": true, "inet_ntoa": true,
	"bit_length": true, "strcmp": true, "makedate": true, "sec_to_time": true,
	"time_to_sec": true, "to_seconds": true, "microsecond": true, "weekofyear": true,
	"regexp_substr": true, "conv": true, "bin": true, "oct": true, "elt": true,
	"insert": true, "date_add": true, "utc_timestamp": true, "now": true, "curdate": true,
	"curtime": true, "convert_tz": true, "ord": true, "addtime": true, "subtime": true,
	"timediff": true, "period_add": true, "period_diff": true, "get_lock": true,
	"release_lock": true, "is_free_lock": true, "is_used_lock": true, "soundex": true,
}

// sqliteSame are MySQL functions SQLite has with the same meaning.
var sqliteSame = map[string]string{
	"ifnull": "ifnull", "nullif": "nullif", "coalesce": "coalesce", "replace": "replace",
	"lower": "lower", "lcase": "lower", "upper": "upper", "ucase": "upper", "abs": "abs",
	"round": "round", "instr": "instr", "ltrim": "ltrim", "rtrim": "rtrim", "trim": "trim",
	"char_length": "length", "character_length": "length", "greatest": "max", "least": "min",
	"ascii": "unicode", "json_extract": "json_extract", "json_array": "json_array",
	"json_object": "json_object", "json_valid": "json_valid", "json_type": "json_type",
	"json_array_length": "json_array_length", "json_quote": "json_quote",
	"substr": "mysql_substring", "substring": "mysql_substring", "quote": "mysql_quote",
}

// forbidden are SQLite functions that must never be reachable from PHP.
var forbidden = map[string]bool{
	"load_extension": true, "readfile": true, "writefile": true, "edit": true,
	"fts3_tokenizer": true, "sqlite_compileoption_get": true, "sqlite_compileoption_used": true,
	"sqlite_offset": true, "sqlite_source_id": true, "sqlite_version": true,
	"zeroblob": true, "randomblob": true, "unlikely": true, "likely": true, "likelihood": true,
}

func (x *xlate) formatFunc(buf *sqlparser.TrackedBuffer, n *sqlparser.FuncExpr) {
	if !n.Qualifier.IsEmpty() {
		x.fail(notSupported("stored function %s.%s", n.Qualifier.String(), n.Name.String()))
		return
	}
	name := n.Name.Lowered()
	args := n.Exprs
	switch name {
	case "if":
		if len(args) != 3 {
			x.fail(wrongArgs("IF"))
			return
		}
		buf.Myprintf("(case when %v then %v else %v end)", args[0], args[1], args[2])
		return
	case "isnull":
		if len(args) != 1 {
			x.fail(wrongArgs("ISNULL"))
			return
		}
		buf.Myprintf("(%v is null)", args[0])
		return
	case "last_insert_id":
		if len(args) > 0 {
			x.fail(notSupported("LAST_INSERT_ID(expr)"))
			return
		}
		buf.WriteString(x.param(ParamLastInsertID))
		return
	case "found_rows":
		buf.WriteString(x.param(ParamFoundRows))
		return
	case "row_count":
		buf.WriteString(x.param(ParamRowCount))
		return
	case "database", "schema":
		buf.WriteString(x.param(ParamDatabase))
		return
	case "user", "current_user", "session_user", "system_user":
		buf.WriteString(x.param(ParamUser))
		return
	case "connection_id":
		buf.WriteString(x.param(ParamConnectionID))
		return
	case "version":
		buf.WriteString(x.param(ParamVarPrefix + "version"))
		return
	case "length", "octet_length":
		if len(args) != 1 {
			x.fail(wrongArgs("LENGTH"))
			return
		}
		buf.Myprintf("length(CAST(%v AS BLOB))", args[0])
		return
	case "log":
		if len(args) == 1 {
			x.printCall(buf, "mysql_ln", args)
		} else {
			x.printCall(buf, "mysql_log", args)
		}
		return
	case "greatest", "least":
		if len(args) < 2 {
			x.fail(wrongArgs(strings.ToUpper(name)))
			return
		}
	case "regexp_like":
		x.printCall(buf, "mysql_regexp", args)
		return
	}
	if forbidden[name] || strings.HasPrefix(name, "sqlite_") {
		x.fail(&Error{Code: 1305, State: "42000", Message: "FUNCTION " + x.cat.Database() + "." + n.Name.String() + " does not exist"})
		return
	}
	if s, ok := sqliteSame[name]; ok {
		x.printCall(buf, s, args)
		return
	}
	if goFuncs[name] {
		x.printCall(buf, "mysql_"+name, args)
		return
	}
	// Anything else goes through as written: SQLite fails to prepare an
	// unknown function, which the wire front reports as an error.
	x.printCall(buf, name, args)
}

func (x *xlate) printCall(buf *sqlparser.TrackedBuffer, name string, args []sqlparser.Expr) {
	buf.WriteString(name + "(")
	for i, a := range args {
		if i > 0 {
			buf.WriteString(", ")
		}
		buf.Myprintf("%v", a)
	}
	buf.WriteString(")")
}

func wrongArgs(fn string) *Error {
	return &Error{Code: 1582, State: "42000", Message: "Incorrect parameter count in the call to native function '" + fn + "'"}
}
