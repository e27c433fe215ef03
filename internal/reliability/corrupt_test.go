package reliability

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestCorruptBinarySites damages the stress binary's pclntab, inline tree
// and build information at random and analyses it as reach attach would
// (binfo, then match with probe sites). Each one must fail with an error
// naming the file, or give only probe sites inside the file's executable
// code: a site elsewhere would put an int3 into data. reach scan on a
// sample of them must not crash. REACH_RELIABILITY_CORRUPTIONS sets the
// number of damaged binaries.
func TestCorruptBinarySites(t *testing.T) {
	n := envInt(t, "REACH_RELIABILITY_CORRUPTIONS", 60)
	path := buildStress(t, testprog.Plain)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	var regions [][2]uint64 // file ranges worth damaging
	for _, name := range []string{".gopclntab", ".go.buildinfo", ".noptrdata", ".rodata", ".text"} {
		if s := ef.Section(name); s != nil && s.Type != elf.SHT_NOBITS {
			regions = append(regions, [2]uint64{s.Offset, s.Offset + s.Size})
		}
	}
	var code [][2]uint64 // executable file ranges
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 {
			code = append(code, [2]uint64{p.Off, p.Off + p.Filesz})
		}
	}
	es := entries(t)
	reach := buildReach(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	outcomes := map[string]int{}
	scans := 0
	for i := 0; i < n; i++ {
		data := bytes.Clone(good)
		how := ""
		switch i % 4 {
		case 0, 1: // flip bytes in one region
			r := regions[rng.IntN(len(regions))]
			k := 1 + rng.IntN(64)
			for j := 0; j < k; j++ {
				data[r[0]+rng.Uint64N(r[1]-r[0])] ^= byte(1 + rng.IntN(255))
			}
			how = fmt.Sprintf("%d bytes flipped in [%#x,%#x)", k, r[0], r[1])
		case 2: // overwrite a run with 0xff or 0x00
			r := regions[0]
			at := r[0] + rng.Uint64N(r[1]-r[0])
			l := min(uint64(1+rng.IntN(4096)), uint64(len(data))-at)
			fill := byte(0xff * rng.IntN(2))
			for j := uint64(0); j < l; j++ {
				data[at+j] = fill
			}
			how = fmt.Sprintf("%d bytes of pclntab at %#x set to %#x", l, at, fill)
		case 3: // truncate
			l := rng.IntN(len(data))
			data = data[:l]
			how = fmt.Sprintf("truncated to %d bytes", l)
		}
		file := filepath.Join(dir, fmt.Sprintf("damaged%d", i))
		if err := os.WriteFile(file, data, 0o755); err != nil {
			t.Fatal(err)
		}
		res, err := watchdog(30*time.Second, func() (string, error) { return analyse(file, es, code) })
		if err != nil {
			t.Fatalf("%s (%s): %v", file, how, err)
		}
		outcomes[res]++
		if i%5 == 0 {
			scans++
			scanDamaged(t, reach, file, how)
		}
	}
	t.Logf("%d damaged binaries: %v; %d scanned by reach", n, outcomes, scans)
	figure(t, "corrupt_binaries", n)
	figure(t, "malformed_inputs", n)
}

// analyse opens and matches file with probe sites. It returns "refused"
// when binfo refuses the file with an error naming it, "analysed" when
// every site is in code, and an error otherwise.
func analyse(file string, es []*osv.Entry, code [][2]uint64) (string, error) {
	bin, err := binfo.Open(file)
	if err != nil {
		if !strings.Contains(err.Error(), file) {
			return "", fmt.Errorf("error does not name the file: %v", err)
		}
		return "refused", nil
	}
	defer bin.Close()
	res, err := match.Match(context.Background(), bin, es, nil)
	if err != nil {
		return "", fmt.Errorf("match: %v", err)
	}
	sites := 0
	for _, f := range res.Findings {
		for _, s := range f.Symbols {
			for _, tg := range s.Funcs {
				for _, site := range tg.Sites {
					sites++
					in := false
					for _, c := range code {
						in = in || (c[0] <= site.Offset && site.Offset < c[1])
					}
					if !in {
						return "", fmt.Errorf("%s: %s site at file offset %#x is outside the executable code", tg.Name, site.Kind, site.Offset)
					}
				}
			}
		}
	}
	if sites == 0 {
		return "analysed, no sites", nil
	}
	return "analysed", nil
}

// scanDamaged runs reach scan on a damaged binary: no crash, exit 0, 1 or
// 3, and an error naming the file or a report that parses.
func scanDamaged(t *testing.T, reach, file, how string) {
	t.Helper()
	cmd := exec.Command(reach, "scan", "-db", dbDir(t), "-format", "json", file)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_, err := watchdog(60*time.Second, func() (struct{}, error) { return struct{}{}, cmd.Run() })
	code := exitCode(err)
	if strings.Contains(stderr.String(), "panic") || strings.Contains(stderr.String(), "goroutine ") {
		t.Fatalf("reach scan %s (%s) crashed:\n%s", file, how, stderr.String())
	}
	switch code {
	case 1:
		if !strings.Contains(stderr.String(), file) {
			t.Errorf("reach scan %s (%s): error does not name the file:\n%s", file, how, stderr.String())
		}
	case 0, 3:
		if _, err := report.ReadJSON(&stdout); err != nil {
			t.Errorf("reach scan %s (%s): report: %v", file, how, err)
		}
	default:
		t.Errorf("reach scan %s (%s): exit code %d (%v), want 0, 1 or 3\n%s", file, how, code, err, stderr.String())
	}
}
