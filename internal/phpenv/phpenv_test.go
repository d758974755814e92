package phpenv_test

import (
	"net"
	"slices"
	"testing"

	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/internal/phpenv"
)

func TestParams(t *testing.T) {
	db := phpenv.EndpointOf(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3306}, "/run/mysql.sock")
	kv := phpenv.EndpointOf(nil, "/run/kv.sock")
	acct := phpenv.Account{DBName: "alice.test", DBUser: "alice.test", DBPassword: "dbpw", KVUser: "alice.test", KVPassword: "kvpw"}
	dbWant := []fastcgi.Param{
		{Name: "EPHPM_DB_HOST", Value: "127.0.0.1"}, {Name: "EPHPM_DB_PORT", Value: "3306"},
		{Name: "EPHPM_DB_SOCKET", Value: "/run/mysql.sock"}, {Name: "EPHPM_DB_NAME", Value: "alice.test"},
		{Name: "EPHPM_DB_USER", Value: "alice.test"}, {Name: "EPHPM_DB_PASSWORD", Value: "dbpw"},
	}
	kvWant := []fastcgi.Param{
		{Name: "EPHPM_KV_HOST", Value: ""}, {Name: "EPHPM_KV_PORT", Value: ""},
		{Name: "EPHPM_KV_SOCKET", Value: "/run/kv.sock"}, {Name: "EPHPM_KV_USER", Value: "alice.test"},
		{Name: "EPHPM_KV_PASSWORD", Value: "kvpw"},
	}
	for _, tc := range []struct {
		name string
		svc  phpenv.Services
		want []fastcgi.Param
	}{
		{"none", phpenv.Services{}, nil},
		{"db only", phpenv.Services{DB: &db}, dbWant},
		{"kv only, socket only", phpenv.Services{KV: &kv}, kvWant},
		{"both", phpenv.Services{DB: &db, KV: &kv}, append(slices.Clone(dbWant), kvWant...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.svc.Params(acct); !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}
