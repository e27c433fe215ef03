//go:build !linux

package probe

func runKeeperIfRequested() {}
