package replication

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm"
)

// Collector exposes every replicated site's state as metrics, read from
// the manager at scrape time (nothing is registered per site).
type Collector struct {
	m                                     *Manager
	role, position, lagFrames, lagSeconds *prometheus.Desc
	fwdStatements, fwdRequests, fwdErrors *prometheus.Desc
	fwdSeconds, applied                   *prometheus.Desc
	leaseHeld, syncWaits, syncUnconfirmed *prometheus.Desc
	syncSeconds                           *prometheus.Desc
}

// NewCollector returns the metrics of m.
func NewCollector(m *Manager) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ephpm_replication_"+name, help, append([]string{"site"}, labels...), nil)
	}
	return &Collector{
		m:               m,
		role:            d("role", "1 for this node's role for the site.", "role"),
		position:        d("position", "Next frame number: written (primary) or applied (replica)."),
		lagFrames:       d("lag_frames", "Frames the replica has not applied yet."),
		lagSeconds:      d("lag_seconds", "Replica lag: while frames are pending or the primary is unreachable, the time since the replica last knew it was caught up (it keeps rising); else the last batch's send to applied."),
		applied:         d("applied_transactions_total", "Primary transactions applied by this replica."),
		fwdStatements:   d("forwarded_statements_total", "MySQL statements forwarded to the primary."),
		fwdRequests:     d("forwarded_requests_total", "HTTP requests forwarded to the primary."),
		fwdErrors:       d("forward_errors_total", "Forwarded statements or requests that failed to reach the primary."),
		fwdSeconds:      d("forward_seconds_total", "Time spent waiting for the primary on forwarded work."),
		leaseHeld:       d("lease_held", "1 while this primary holds its lease for the site (cluster sites with leases only); 0: writes refused."),
		syncWaits:       d("sync_waits_total", "Commits of a sync = replica site that waited for a replica."),
		syncUnconfirmed: d("sync_unconfirmed_total", "Commits of a sync = replica site no replica confirmed in time (the client got an error)."),
		syncSeconds:     d("sync_wait_seconds_total", "Time commits of a sync = replica site waited for a replica."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.role, c.position, c.lagFrames, c.lagSeconds, c.applied, c.fwdStatements, c.fwdRequests, c.fwdErrors, c.fwdSeconds,
		c.leaseHeld, c.syncWaits, c.syncUnconfirmed, c.syncSeconds} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.m.Status() {
		g := func(d *prometheus.Desc, v float64, l ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{s.Site}, l...)...)
		}
		ct := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, s.Site)
		}
		g(c.role, 1, string(s.Role))
		g(c.position, float64(s.Position))
		if s.Role == ephpm.RoleReplica {
			g(c.lagFrames, float64(s.LagFrames))
			g(c.lagSeconds, s.LagMillis/1000)
			ct(c.applied, float64(s.Txs))
			ct(c.fwdStatements, float64(s.ForwardedStatements))
			ct(c.fwdRequests, float64(s.ForwardedRequests))
			ct(c.fwdErrors, float64(s.ForwardErrors))
			ct(c.fwdSeconds, s.ForwardMillis/1000)
		}
		if s.Role == ephpm.RolePrimary {
			if s.Lease != "" {
				held := 0.0
				if s.Lease == "held" {
					held = 1
				}
				g(c.leaseHeld, held)
			}
			if s.Sync == SyncReplica.String() {
				ct(c.syncWaits, float64(s.SyncWaits))
				ct(c.syncUnconfirmed, float64(s.SyncUnconfirmed))
				ct(c.syncSeconds, s.SyncWaitMillis/1000)
			}
		}
	}
}
