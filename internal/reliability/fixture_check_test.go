package reliability

import (
	"testing"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestFixture checks the fixture itself: deterministic, and with probe
// sites of every kind for the tests to watch.
func TestFixture(t *testing.T) {
	for _, v := range []testprog.Variant{testprog.Plain, testprog.StrippedPIE} {
		t.Run(v.Name, func(t *testing.T) {
			path := buildStress(t, v)
			sum := referenceChecksum(t, path)
			kinds := map[binfo.SiteKind]int{}
			for _, s := range probeSites(t, path) {
				kinds[s.site.Kind]++
			}
			t.Logf("checksum %s, sites %v", sum, kinds)
			for _, k := range []binfo.SiteKind{binfo.SiteEntry, binfo.SitePushBP, binfo.SiteInline} {
				if kinds[k] == 0 {
					t.Errorf("no %s site: the fixture no longer exercises every kind of probe", k)
				}
			}
		})
	}
}
