package mysqlwire

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counters are node-wide figures read at scrape time, so the hot path pays
// one atomic add; no site label (thousands of sites would explode
// cardinality).
type counters struct {
	statements   atomic.Int64
	errors       atomic.Int64
	lockTimeouts atomic.Int64
	timeouts     atomic.Int64 // statements past StatementTimeout (3024)
	clientGone   atomic.Int64 // statements interrupted because their client left
	authFailures atomic.Int64
	connsTotal   atomic.Int64
	conns        atomic.Int64
}

func (s *Server) registerMetrics(r prometheus.Registerer) error {
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "ephpm", Subsystem: "mysql", Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	cs := []prometheus.Collector{
		counter("statements_total", "Statements executed (COM_QUERY pieces and prepared executions).", &s.stats.statements),
		counter("errors_total", "Statements answered with an error.", &s.stats.errors),
		counter("lock_timeouts_total", "Statements that gave up waiting for the writer (1205).", &s.stats.lockTimeouts),
		counter("statement_timeouts_total", "Statements interrupted at the statement time limit (3024).", &s.stats.timeouts),
		counter("client_gone_total", "Statements interrupted because their client disconnected.", &s.stats.clientGone),
		counter("auth_failures_total", "Rejected logins.", &s.stats.authFailures),
		counter("connections_total", "Client connections accepted.", &s.stats.connsTotal),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ephpm", Subsystem: "mysql", Name: "connections", Help: "Open client connections."},
			func() float64 { return float64(s.stats.conns.Load()) }),
	}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
