// Package gosuite is a fixture for reach's tests of `reach run -- go test
// ./...`: a module of three packages whose tests call vulnerable versions
// of golang.org/x/text (lang: language.Parse, GO-2021-0113) and
// gopkg.in/yaml.v2 (yamlcfg: yaml.Unmarshal), or nothing vulnerable
// (plain). plain's test fails when REACH_GOSUITE_FAIL is set, so that a
// test can check reach's exit status on a failing suite.
package gosuite
