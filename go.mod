module github.com/reach-sca/reach

go 1.26.8

require (
	github.com/cilium/ebpf v0.22.0 // indirect
	github.com/openvex/go-vex v0.2.9 // indirect
	golang.org/x/arch v0.32.0 // indirect
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/sys v0.43.0 // indirect
)
