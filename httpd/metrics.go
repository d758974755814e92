package httpd

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	mu    sync.RWMutex
	cache map[siteCode]prometheus.Counter // avoids label hashing per request
	hist  map[string]prometheus.Observer
}

type siteCode struct {
	site string
	code int
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ephpm_http_requests_total", Help: "HTTP requests by site and status code.",
		}, []string{"site", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ephpm_http_request_duration_seconds", Help: "HTTP request latency by site.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"site"}),
		cache: map[siteCode]prometheus.Counter{},
		hist:  map[string]prometheus.Observer{},
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *metrics) observe(site string, code int, d time.Duration) {
	k := siteCode{site, code}
	m.mu.RLock()
	c, h := m.cache[k], m.hist[site]
	m.mu.RUnlock()
	if c == nil || h == nil {
		c = m.requests.WithLabelValues(site, strconv.Itoa(code))
		h = m.latency.WithLabelValues(site)
		m.mu.Lock()
		m.cache[k], m.hist[site] = c, h
		m.mu.Unlock()
	}
	c.Inc()
	h.Observe(d.Seconds())
}
