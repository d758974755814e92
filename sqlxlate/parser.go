package sqlxlate

import (
	"vitess.io/vitess/go/mysql/config"
	"vitess.io/vitess/go/vt/sqlparser"
)

// parserOptions configure vitess's parser for every statement the
// translator reads. MySQLServerVersion decides which versioned comments
// (/*!80013 … */) are read as SQL: those written for MySQL up to vitess's
// default version (8.4), newer than the 8.0 ServerVersion reports, as
// the translator has always read them. TruncateUILen bounds statements
// quoted in vitess's own messages.
var parserOptions = sqlparser.Options{
	MySQLServerVersion: config.DefaultMySQLVersion,
	TruncateUILen:      512,
}

// parser is the one vitess parser the package uses; it holds only its
// options, so it is safe for concurrent use.
var parser = mustParser(parserOptions)

func mustParser(opts sqlparser.Options) *sqlparser.Parser {
	p, err := sqlparser.New(opts)
	if err != nil {
		panic("sqlxlate: vitess parser: " + err.Error()) // the options are constants
	}
	return p
}
