package mysqlwire

import (
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/ephpm/ephpm"
)

// The conversions between vitess's results and errors and the neutral
// ones forwarded statements travel as, for the round-trip tests.
func ToResult(res *sqltypes.Result) (*ephpm.Result, error)   { return toResult(res) }
func FromResult(res *ephpm.Result) (*sqltypes.Result, error) { return fromResult(res) }
func ToNeutralError(err error) error                         { return toNeutralError(err) }
func ToSQLError(err error) error                             { return toSQLError(err, "db") }

// TypeName is the neutral name of a vitess column type.
func TypeName(t querypb.Type) (string, bool) { n, ok := typeNames[t]; return n, ok }
