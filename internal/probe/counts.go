package probe

import (
	"cmp"
	"slices"
)

func sortCounts(m map[countKey]uint64) []SiteCount {
	out := make([]SiteCount, 0, len(m))
	for k, v := range m {
		if v > 0 {
			out = append(out, SiteCount{PID: k.pid, Group: k.group, Site: k.site, Hits: v})
		}
	}
	slices.SortFunc(out, func(a, b SiteCount) int {
		return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.Group, b.Group), cmp.Compare(a.Site, b.Site))
	})
	return out
}

type countKey struct {
	pid   int
	group uint64
	site  int
}

func sortCallsiteCounts(m map[callsiteCountKey]uint64) []CallsiteCount {
	out := make([]CallsiteCount, 0, len(m))
	for k, v := range m {
		if v > 0 {
			out = append(out, CallsiteCount{PID: k.pid, Group: k.group, Site: k.site, Key: k.key, Hits: v})
		}
	}
	slices.SortFunc(out, func(a, b CallsiteCount) int {
		return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.Group, b.Group), cmp.Compare(a.Site, b.Site), cmp.Compare(a.Key, b.Key))
	})
	return out
}

type callsiteCountKey struct {
	pid   int
	group uint64
	site  int
	key   uint64
}
