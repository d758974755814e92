// Package phpenv writes the EPHPM_* variables through which PHP finds
// the node's services — the MySQL front (EPHPM_DB_*) and the KV store
// (EPHPM_KV_*) — with the credentials of the site a request is for. It
// is the one place their names are spelled; README.md lists them for
// PHP code (wp-config.php, the object cache).
package phpenv

import (
	"net"

	"github.com/ephpm/ephpm/fastcgi"
)

// Endpoint is where a service listens.
type Endpoint struct {
	Host, Port string // TCP; empty when the service has no TCP listener
	Socket     string // unix socket path
}

// EndpointOf is the Endpoint of a service listening on tcp (nil: no TCP
// listener) and socket.
func EndpointOf(tcp net.Addr, socket string) Endpoint {
	e := Endpoint{Socket: socket}
	if tcp != nil {
		e.Host, e.Port, _ = net.SplitHostPort(tcp.String())
	}
	return e
}

// Services are the node's services PHP is told about; a nil one is off
// and not mentioned.
type Services struct {
	DB *Endpoint // the MySQL front
	KV *Endpoint // the KV store
}

// Account is what one site's PHP logs in with.
type Account struct {
	DBName, DBUser, DBPassword string
	KVUser, KVPassword         string
}

// Params are the variables of a request of the site whose account is a.
func (s Services) Params(a Account) []fastcgi.Param {
	var p []fastcgi.Param
	if s.DB != nil {
		p = append(p,
			fastcgi.Param{Name: "EPHPM_DB_HOST", Value: s.DB.Host},
			fastcgi.Param{Name: "EPHPM_DB_PORT", Value: s.DB.Port},
			fastcgi.Param{Name: "EPHPM_DB_SOCKET", Value: s.DB.Socket},
			fastcgi.Param{Name: "EPHPM_DB_NAME", Value: a.DBName},
			fastcgi.Param{Name: "EPHPM_DB_USER", Value: a.DBUser},
			fastcgi.Param{Name: "EPHPM_DB_PASSWORD", Value: a.DBPassword})
	}
	if s.KV != nil {
		p = append(p,
			fastcgi.Param{Name: "EPHPM_KV_HOST", Value: s.KV.Host},
			fastcgi.Param{Name: "EPHPM_KV_PORT", Value: s.KV.Port},
			fastcgi.Param{Name: "EPHPM_KV_SOCKET", Value: s.KV.Socket},
			fastcgi.Param{Name: "EPHPM_KV_USER", Value: a.KVUser},
			fastcgi.Param{Name: "EPHPM_KV_PASSWORD", Value: a.KVPassword})
	}
	return p
}
