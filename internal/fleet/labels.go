package fleet

import (
	"os"
	"strconv"
	"strings"
)

// OpenTelemetry resource attribute names reach sets.
const (
	LabelContainerID  = "container.id"
	LabelK8sPod       = "k8s.pod.name"
	LabelK8sNamespace = "k8s.namespace.name"
)

// EnvLabels returns the resource attributes of reach's own process, which
// are those of the programs reach run starts: container.id from
// /proc/self/cgroup (when the cgroup path names a container runtime's
// 64-hex-digit ID), k8s.pod.name and k8s.namespace.name from POD_NAME and
// POD_NAMESPACE when set (Kubernetes sets neither by itself: the pod spec
// passes them through the downward API). getenv is os.Getenv in use.
func EnvLabels(getenv func(string) string) map[string]string {
	labels := ProcessLabels(0)
	if labels == nil {
		labels = make(map[string]string)
	}
	if v := getenv("POD_NAME"); v != "" {
		labels[LabelK8sPod] = v
	}
	if v := getenv("POD_NAMESPACE"); v != "" {
		labels[LabelK8sNamespace] = v
	}
	if len(labels) == 0 {
		return nil
	}
	return labels
}

// ProcessLabels returns the resource attributes reach can read of process
// pid (0 for reach itself) without touching it: container.id from its
// cgroup. It returns nil when there are none, or the process is gone.
func ProcessLabels(pid int) map[string]string {
	p := "/proc/self/cgroup"
	if pid > 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/cgroup"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	if id := ContainerID(string(b)); id != "" {
		return map[string]string{LabelContainerID: id}
	}
	return nil
}

// ContainerID returns the container ID in the text of a /proc/PID/cgroup
// file: the last 64-hex-digit name in its paths, bare (cgroup v1
// "/docker/ID", Kubernetes ".../pod.../ID") or in a systemd scope
// ("docker-ID.scope", "cri-containerd-ID.scope", "crio-ID.scope",
// "libpod-ID.scope"). "" when none: a process outside containers, or in a
// private cgroup namespace ("0::/").
func ContainerID(cgroup string) string {
	id := ""
	for _, line := range strings.Split(cgroup, "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, seg := range strings.Split(parts[2], "/") {
			seg = strings.TrimSuffix(seg, ".scope")
			if i := strings.LastIndexAny(seg, "-:"); i >= 0 {
				seg = seg[i+1:]
			}
			if isContainerID(seg) {
				id = seg
			}
		}
	}
	return id
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
