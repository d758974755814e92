package cluster

import (
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
)

type collector struct{ c *Cluster }

// NewCollector exports the node's view of the cluster; Collect reads
// local state only.
func NewCollector(c *Cluster) prometheus.Collector { return collector{c} }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMembers, descLeader, descTerm, descCommit, descApplied, descSites, descEpoch, descLeaderChanges} {
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
	for _, s := range c.Sites() {
		if s.State != SiteActive {
			continue // a tombstone
		}
		active++
		ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(s.Epoch), s.Name)
	}
	ch <- prometheus.MustNewConstMetric(descSites, prometheus.GaugeValue, float64(active))
	ch <- prometheus.MustNewConstMetric(descLeaderChanges, prometheus.CounterValue, float64(c.leaderChanges.Load()))
}
