package testprog

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path"
	"strconv"
	"strings"
)

// CoveredFuncs reads the coverage data that programs built with
// Variant.CoverPkg wrote to dir (their GOCOVERDIR) with `go tool covdata
// func`, and returns, for each function of the covered packages, whether
// any of its statements ran. Keys are "pkg.Func", "pkg.Type.Method" (the
// receiver's '*' dropped), as OSV entries name symbols.
func CoveredFuncs(dir string) (map[string]bool, error) {
	cmd := exec.Command("go", "tool", "covdata", "func", "-i="+dir)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go tool covdata func -i=%s: %v\n%s", dir, err, stderr.String())
	}
	ran := map[string]bool{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		// "gopkg.in/yaml.v2/decode.go:317:	*decoder.unmarshal	66.7%"
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] == "total" || f[0] == "total:" {
			continue
		}
		file, _, ok := strings.Cut(f[0], ":")
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[2], "%"), 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("go tool covdata func: unexpected line %q", sc.Text())
		}
		key := path.Dir(file) + "." + strings.TrimPrefix(f[1], "*")
		ran[key] = ran[key] || pct > 0
	}
	if len(ran) == 0 {
		return nil, fmt.Errorf("no coverage data in %s: was the program built with CoverPkg and run with GOCOVERDIR=%s?", dir, dir)
	}
	return ran, nil
}
