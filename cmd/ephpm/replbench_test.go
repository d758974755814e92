package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const tenWritesPHP = `<?php
// A WordPress-like save: 10 sequential writes (5 INSERT, 5 UPDATE).
$m = new mysqli($_SERVER['EPHPM_DB_HOST'], $_SERVER['EPHPM_DB_USER'], $_SERVER['EPHPM_DB_PASSWORD'],
	$_SERVER['EPHPM_DB_NAME'], (int) $_SERVER['EPHPM_DB_PORT']);
$ids = [];
for ($i = 0; $i < 5; $i++) {
	$m->query("INSERT INTO acks (v, at) VALUES ('save', NOW())") or die("error " . $m->error);
	$ids[] = $m->insert_id;
}
foreach ($ids as $id) {
	$m->query("UPDATE acks SET v = 'saved' WHERE id = $id") or die("error " . $m->error);
}
echo "ok ", implode(",", $ids);
`

// BenchmarkReplicaWriteRequest compares the two ways a write request on a
// replica reaches a primary 250 ms (round trip) away: request routing
// (POST: the whole PHP request runs on the primary) and statement
// forwarding (GET: PHP runs on the replica, each statement crosses). The
// target for routing is ≤ 1 RTT + 30 ms. The same script on the primary
// itself is the baseline.
func BenchmarkReplicaWriteRequest(b *testing.B) {
	c := newClusterDelay(b, map[string]string{"alice-blog.com": "frankfurt"}, 125*time.Millisecond)
	for _, region := range clusterNames {
		if err := os.WriteFile(filepath.Join(c.regions[region].sitesDir, "alice-blog.com", "ten.php"), []byte(tenWritesPHP), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	c.acks("frankfurt", "alice-blog.com", 1, 0, nil) // creates the table
	c.converged("alice-blog.com")
	for _, tc := range []struct{ name, region, method string }{
		{"primary-local", "frankfurt", "POST"},
		{"replica-request-routing", "tokyo", "POST"},
		{"replica-statement-forwarding", "tokyo", "GET"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cl := c.client(tc.region, "alice-blog.com")
			cl.req(tc.method, "/ten.php", nil, "", "") // warm: connections, PHP opcache
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, body := cl.req(tc.method, "/ten.php", nil, "", "")
				if resp.StatusCode != 200 || !strings.HasPrefix(body, "ok ") {
					b.Fatalf("%d %s", resp.StatusCode, body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/request")
		})
	}
}
