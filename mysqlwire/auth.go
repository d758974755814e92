package mysqlwire

import (
	"crypto/subtle"
	"net"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// authServer checks mysql_native_password against the Directory. Native
// auth is what PHP's mysqlnd and the mariadb CLI speak on plain TCP without
// extra flags (vitess's caching_sha2 needs TLS or a socket).
type authServer struct {
	srv *Server
}

var (
	_ mysql.AuthServer  = (*authServer)(nil)
	_ mysql.HashStorage = (*authServer)(nil)
)

func (a *authServer) AuthMethods() []mysql.AuthMethod {
	return []mysql.AuthMethod{mysql.NewMysqlNativeAuthMethod(a, a)}
}

func (a *authServer) DefaultAuthMethodDescription() mysql.AuthMethodDescription {
	return mysql.MysqlNativePassword
}

// HandleUser accepts every name; unknown users fail the password check with
// the same error as a bad password, so names cannot be probed.
func (a *authServer) HandleUser(string) bool { return true }

// accountData is the Getter attached to an authenticated connection.
type accountData struct{ acct *Account }

func (d *accountData) Get() *querypb.VTGateCallerID {
	return &querypb.VTGateCallerID{Username: d.acct.User}
}

func (a *authServer) UserEntryWithHash(_ *mysql.Conn, salt []byte, user string, authResponse []byte, _ net.Addr) (mysql.Getter, error) {
	denied := sqlerror.NewSQLErrorf(sqlerror.ERAccessDeniedError, sqlerror.SSAccessDeniedError,
		"Access denied for user '%v' (using password: %s)", user, yesNo(len(authResponse) > 0))
	acct, err := a.srv.cfg.Sites.Lookup(a.srv.ctx, user)
	if err != nil {
		a.srv.log.Error("account lookup failed", "user", user, "err", err)
		return nil, denied
	}
	// Empty passwords are never accepted: credentials are required.
	if acct == nil || acct.Password == "" || len(authResponse) == 0 {
		a.srv.stats.authFailures.Add(1)
		return nil, denied
	}
	want := mysql.ScrambleMysqlNativePassword(salt, []byte(acct.Password))
	if subtle.ConstantTimeCompare(want, authResponse) != 1 {
		a.srv.stats.authFailures.Add(1)
		return nil, denied
	}
	return &accountData{acct: acct}, nil
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}
