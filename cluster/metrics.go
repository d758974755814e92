package cluster

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descMembers       = prometheus.NewDesc("ephpm_cluster_members", "Gossip members by state.", []string{"state"}, nil)
	descLeader        = prometheus.NewDesc("ephpm_cluster_raft_leader", "1 if this node is the raft leader.", nil, nil)
	descTerm          = prometheus.NewDesc("ephpm_cluster_raft_term", "Current raft term.", nil, nil)
	descCommit        = prometheus.NewDesc("ephpm_cluster_raft_commit_index", "Raft commit index.", nil, nil)
	descApplied       = prometheus.NewDesc("ephpm_cluster_raft_applied_index", "Raft applied index.", nil, nil)
	descSites         = prometheus.NewDesc("ephpm_cluster_sites", "Active sites in the directory.", nil, nil)
	descEpoch         = prometheus.NewDesc("ephpm_cluster_site_epoch", "Epoch of each site's primary.", []string{"site"}, nil)
	descLeaderChanges = prometheus.NewDesc("ephpm_cluster_leader_changes_total", "Raft leader changes seen by this node.", nil, nil)
	descRenewals      = prometheus.NewDesc("ephpm_cluster_lease_renewals_total", "This node's lease renewals by result (ok, error).", []string{"result"}, nil)
	descLeaseHeld     = prometheus.NewDesc("ephpm_cluster_lease_held", "1 if this node holds its lease (its primaries may write).", nil, nil)
	descLapsed        = prometheus.NewDesc("ephpm_cluster_leases_lapsed", "Nodes whose lease lapsed, as judged by the leader (only on the leader).", nil, nil)
	descFailovers     = prometheus.NewDesc("ephpm_cluster_failovers_total", "Failovers applied in the directory, all sites.", nil, nil)
)

type collector struct{ c *Cluster }

// NewCollector exports the node's view of the cluster; Collect reads
// local state only.
func NewCollector(c *Cluster) prometheus.Collector { return collector{c} }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMembers, descLeader, descTerm, descCommit, descApplied, descSites, descEpoch, descLeaderChanges,
		descRenewals, descLeaseHeld, descLapsed, descFailovers} {
		ch <- d
	}
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	c := k.c
	counts := map[MemberState]int{MemberAlive: 0, MemberDead: 0, MemberLeft: 0}
	for _, m := range c.Members() {
		counts[m.State]++
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(n), string(st))
	}
	leader := 0.0
	if c.raft.State() == raft.Leader {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader)
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(c.raft.CurrentTerm()))
	ch <- prometheus.MustNewConstMetric(descCommit, prometheus.GaugeValue, float64(c.raft.CommitIndex()))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(c.raft.AppliedIndex()))
	active := 0
	var failovers uint64
	for _, s := range c.Sites() {
		failovers += s.Failovers
		if s.State != SiteActive {
			continue // a tombstone
		}
		active++
		ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(s.Epoch), s.Name)
	}
	ch <- prometheus.MustNewConstMetric(descSites, prometheus.GaugeValue, float64(active))
	ch <- prometheus.MustNewConstMetric(descLeaderChanges, prometheus.CounterValue, float64(c.leaderChanges.Load()))
	ch <- prometheus.MustNewConstMetric(descFailovers, prometheus.CounterValue, float64(failovers))
	ch <- prometheus.MustNewConstMetric(descRenewals, prometheus.CounterValue, float64(c.renewals.Load()), "ok")
	ch <- prometheus.MustNewConstMetric(descRenewals, prometheus.CounterValue, float64(c.renewErrors.Load()), "error")
	held := 0.0
	if c.Lease().Held(time.Now()) {
		held = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeaseHeld, prometheus.GaugeValue, held)
	if lapsed, err := c.LapsedNodes(); err == nil {
		ch <- prometheus.MustNewConstMetric(descLapsed, prometheus.GaugeValue, float64(len(lapsed)))
	}
}
