package sqlxlate

import (
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"
)

// ServerVersion is what @@version and VERSION() report: a MySQL 8.0
// version, so applications enable the features they test for.
const ServerVersion = "8.0.36-ephpm"

// DefaultVariables are the session/global variables a fresh session sees,
// keyed by lower-case name, valued as SELECT @@name returns them.
func DefaultVariables() map[string]string {
	return map[string]string{
		"version":                         ServerVersion,
		"version_comment":                 "ephpm (SQLite)",
		"version_compile_os":              "Linux",
		"version_compile_machine":         "x86_64",
		"innodb_version":                  "8.0.36",
		"protocol_version":                "10",
		"sql_mode":                        "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
		"autocommit":                      "1",
		"character_set_client":            "utf8mb4",
		"character_set_connection":        "utf8mb4",
		"character_set_results":           "utf8mb4",
		"character_set_server":            "utf8mb4",
		"character_set_database":          "utf8mb4",
		"character_set_system":            "utf8mb3",
		"character_set_filesystem":        "binary",
		"collation_connection":            "utf8mb4_0900_ai_ci",
		"collation_server":                "utf8mb4_0900_ai_ci",
		"collation_database":              "utf8mb4_0900_ai_ci",
		"max_allowed_packet":              "67108864",
		"net_buffer_length":               "16384",
		"wait_timeout":                    "28800",
		"interactive_timeout":             "28800",
		"net_read_timeout":                "30",
		"net_write_timeout":               "60",
		"lock_wait_timeout":               "31536000",
		"innodb_lock_wait_timeout":        "50",
		"lower_case_table_names":          "0",
		"time_zone":                       "SYSTEM",
		"system_time_zone":                "UTC",
		"transaction_isolation":           "REPEATABLE-READ",
		"tx_isolation":                    "REPEATABLE-READ",
		"transaction_read_only":           "0",
		"tx_read_only":                    "0",
		"default_storage_engine":          "InnoDB",
		"storage_engine":                  "InnoDB",
		"default_tmp_storage_engine":      "InnoDB",
		"group_concat_max_len":            "1024",
		"sql_auto_is_null":                "0",
		"sql_safe_updates":                "0",
		"sql_select_limit":                "18446744073709551615",
		"sql_big_selects":                 "1",
		"foreign_key_checks":              "1",
		"unique_checks":                   "1",
		"auto_increment_increment":        "1",
		"auto_increment_offset":           "1",
		"div_precision_increment":         "4",
		"max_connections":                 "151",
		"max_user_connections":            "0",
		"max_join_size":                   "18446744073709551615",
		"performance_schema":              "0",
		"have_ssl":                        "DISABLED",
		"have_openssl":                    "DISABLED",
		"ft_min_word_len":                 "4",
		"ft_max_word_len":                 "84",
		"innodb_ft_min_token_size":        "3",
		"read_only":                       "0",
		"super_read_only":                 "0",
		"explicit_defaults_for_timestamp": "1",
		"lc_time_names":                   "en_US",
		"license":                         "GPL",
		"port":                            "3306",
		"hostname":                        "localhost",
		"server_id":                       "1",
		"init_connect":                    "",
		"log_bin":                         "0",
		"binlog_format":                   "ROW",
		"query_cache_size":                "0",
		"query_cache_type":                "0",
		"default_week_format":             "0",
		"big_tables":                      "0",
		"sql_notes":                       "1",
		"sql_warnings":                    "0",
		"warning_count":                   "0",
		"error_count":                     "0",
		"identity":                        "0",
		"last_insert_id":                  "0",
		"innodb_large_prefix":             "1",
		"innodb_file_per_table":           "1",
		"innodb_default_row_format":       "dynamic",
		"default_authentication_plugin":   "mysql_native_password",
		"datadir":                         "/var/lib/ephpm/",
		"tmpdir":                          "/tmp",
		"socket":                          "",
		"block_encryption_mode":           "aes-128-ecb",
		"open_files_limit":                "1024",
		"table_open_cache":                "4000",
		"thread_cache_size":               "9",
		"key_buffer_size":                 "8388608",
		"innodb_buffer_pool_size":         "134217728",
		"tmp_table_size":                  "16777216",
		"max_heap_table_size":             "16777216",
		"sort_buffer_size":                "262144",
		"join_buffer_size":                "262144",
		"max_execution_time":              "0",
		"long_query_time":                 "10.000000",
		"slow_query_log":                  "0",
		"general_log":                     "0",
		"event_scheduler":                 "OFF",
		"optimizer_switch":                "index_merge=on",
		"cte_max_recursion_depth":         "1000",
		"information_schema_stats_expiry": "86400",
	}
}

func (x *xlate) setPlan(s *sqlparser.Set) (*Plan, error) {
	p := &Plan{Kind: KindSet}
	for _, e := range s.Exprs {
		v := SetVar{Name: strings.ToLower(e.Var.Name.String())}
		switch e.Var.Scope {
		case sqlparser.VariableScope:
			v.Scope = "user"
		case sqlparser.GlobalScope, sqlparser.PersistSysScope, sqlparser.PersistOnlySysScope:
			v.Scope = "global"
		case sqlparser.NextTxScope:
			// SET TRANSACTION …: SQLite transactions are serializable
			continue
		default:
			v.Scope = "session"
		}
		switch val := e.Expr.(type) {
		case *sqlparser.Literal:
			switch val.Type {
			case sqlparser.IntVal:
				v.Value = parseIntOr(val.Val)
			case sqlparser.FloatVal, sqlparser.DecimalVal:
				v.Expr = literalSQL(val)
			default:
				v.Value = val.Val
			}
		case *sqlparser.NullVal:
			v.Value = nil
		case sqlparser.BoolVal:
			if val {
				v.Value = int64(1)
			} else {
				v.Value = int64(0)
			}
		case *sqlparser.ColName:
			// SET autocommit = ON, SET sql_mode = TRADITIONAL
			v.Value = val.Name.String()
		case *sqlparser.Default:
			v.Value = DefaultVariables()[v.Name]
		default:
			v.Expr = x.print(val)
		}
		if v.Name == "autocommit" {
			v.Value = normalizeBool(v.Value)
		}
		p.Sets = append(p.Sets, v)
		// SET NAMES / CHARACTER SET set the connection's charset variables
		if cs, ok := v.Value.(string); ok && v.Expr == "" && (v.Name == "names" || v.Name == "charset") {
			cs = strings.ToLower(cs)
			if cs == "default" {
				cs = "utf8mb4"
			}
			p.Sets = append(p.Sets,
				SetVar{Scope: "session", Name: "character_set_client", Value: cs},
				SetVar{Scope: "session", Name: "character_set_results", Value: cs})
			if v.Name == "names" {
				p.Sets = append(p.Sets,
					SetVar{Scope: "session", Name: "character_set_connection", Value: cs},
					SetVar{Scope: "session", Name: "collation_connection", Value: defaultCollation(cs)})
			}
		}
	}
	if len(p.Sets) == 0 {
		return &Plan{Kind: KindNoop}, nil
	}
	return p, nil
}

func parseIntOr(s string) any {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return s
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

func normalizeBool(v any) any {
	switch x := v.(type) {
	case string:
		switch strings.ToLower(x) {
		case "on", "true", "1":
			return int64(1)
		case "off", "false", "0":
			return int64(0)
		}
	}
	return v
}
