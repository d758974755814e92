package replication_test

import (
	"net/http"
	"testing"

	"github.com/ephpm/ephpm/replication"
)

func TestSiteOfBearer(t *testing.T) {
	const cluster = "0123456789abcdef-cluster"
	tok := replication.SiteToken(cluster, "alice.test")
	other := replication.SiteToken("another-cluster-token", "alice.test")
	for _, tc := range []struct {
		name   string
		header map[string]string
		site   string
		ok     bool
	}{
		{"bearer", map[string]string{"Authorization": "Bearer " + tok}, "alice.test", true},
		{"bare token", map[string]string{"Authorization": tok}, "alice.test", true},
		{"spaces", map[string]string{"Authorization": "Bearer  " + tok + " "}, "alice.test", true},
		{"x-authorization", map[string]string{"X-Authorization": "Bearer " + tok}, "alice.test", true},
		{"authorization wins", map[string]string{"Authorization": "Bearer " + other, "X-Authorization": "Bearer " + tok}, "", false},
		{"none", nil, "", false},
		{"another cluster's token", map[string]string{"Authorization": "Bearer " + other}, "", false},
		{"site swapped", map[string]string{"Authorization": "Bearer bob.test" + tok[len("alice.test"):]}, "", false},
		{"no mac", map[string]string{"Authorization": "Bearer alice.test"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			site, ok := replication.SiteOfBearer(cluster, h)
			if ok != tc.ok || (ok && site != tc.site) {
				t.Errorf("SiteOfBearer = %q, %v; want %q, %v", site, ok, tc.site, tc.ok)
			}
		})
	}
}
