package kv

import "github.com/prometheus/client_golang/prometheus"

// registerMetrics exposes node-wide KV figures. They are read from the
// store's counters at scrape time, so the hot path pays nothing extra, and
// they carry no site label: thousands of sites would explode cardinality.
func (s *Server) registerMetrics(r prometheus.Registerer) error {
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "ephpm", Subsystem: "kv", Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ephpm", Subsystem: "kv", Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		counter("commands_total", "Commands processed.", func() float64 { return float64(s.commands.Load()) }),
		counter("evicted_keys_total", "Keys evicted to stay under the memory limit.", func() float64 { return float64(s.st.evicted.Load()) }),
		counter("expired_keys_total", "Keys removed because their TTL passed.", func() float64 { return float64(s.st.expired.Load()) }),
		counter("connections_total", "Connections accepted.", func() float64 { return float64(s.connsTotal.Load()) }),
		counter("rejected_connections_total", "Connections refused at max_connections.", func() float64 { return float64(s.rejected.Load()) }),
		counter("keyspace_hits_total", "Successful key lookups.", func() float64 { return float64(s.sumSites(func(st *site) int64 { return st.hits.Load() })) }),
		counter("keyspace_misses_total", "Failed key lookups.", func() float64 { return float64(s.sumSites(func(st *site) int64 { return st.misses.Load() })) }),
		gauge("memory_used_bytes", "Approximate bytes held by keys and values.", func() float64 { return float64(s.st.used.Load()) }),
		gauge("memory_limit_bytes", "Configured memory limit (0 = none).", func() float64 { return float64(s.st.limit) }),
		gauge("connections", "Open client connections.", func() float64 { return float64(s.nconns.Load()) }),
		gauge("keys", "Keys in all keyspaces.", func() float64 { return float64(s.keys()) }),
	}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) sumSites(f func(*site) int64) int64 {
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	var n int64
	for _, st := range s.st.sites {
		n += f(st)
	}
	return n
}

func (s *Server) keys() int64 {
	return s.sumSites(func(st *site) int64 {
		var n int64
		for i := range st.dbs {
			if d := st.dbs[i].Load(); d != nil {
				k, _ := d.counts()
				n += int64(k)
			}
		}
		return n
	})
}
