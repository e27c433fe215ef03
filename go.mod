module github.com/reach-sca/reach

go 1.26.8

require (
	github.com/cilium/ebpf v0.22.0
	github.com/openvex/go-vex v0.2.9
	github.com/rogpeppe/go-internal v1.14.1
	golang.org/x/arch v0.32.0
	golang.org/x/mod v0.42.0
	golang.org/x/sys v0.48.0
	golang.org/x/tools v0.51.0
)

require (
	github.com/in-toto/attestation v1.2.0 // indirect
	github.com/package-url/packageurl-go v0.1.7 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
