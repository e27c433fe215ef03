package procfs

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tail := " 30774 30774 26697 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 647594 3133440 387 18446744073709551615"
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{"running", "30778 (cat) R" + tail, Stat{'R', 647594}, false},
		{"zombie", "30778 (cat) Z" + tail, Stat{'Z', 647594}, false},
		{"spaces and parentheses in the name", "30778 (a) b) (c d) S" + tail, Stat{'S', 647594}, false},
		{"no name", "30778 cat R" + tail, Stat{}, true},
		{"short", "30778 (cat) R 1 2 3", Stat{}, true},
		{"bad start time", "30778 (cat) R 30774 30774 26697 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 x 3133440", Stat{}, true},
		{"empty", "", Stat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStat(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseStat(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestExitedStates(t *testing.T) {
	for _, c := range []struct {
		state byte
		want  bool
	}{{'R', false}, {'S', false}, {'D', false}, {'T', false}, {'Z', true}, {'X', true}} {
		if got := (Stat{State: c.state}).Exited(); got != c.want {
			t.Errorf("Stat{State: %c}.Exited() = %v, want %v", c.state, got, c.want)
		}
	}
}

// TestExitedRealProcess checks the three states on real processes: this
// one running, a child that exited but is not reaped (a zombie), and the
// same child once reaped (no /proc entry).
func TestExitedRealProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc (Linux)")
	}
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.Exited() || st.Start == 0 || Exited(os.Getpid()) {
		t.Fatalf("this process reads as %+v, exited %v", st, Exited(os.Getpid()))
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for !Exited(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d did not read as exited before it was reaped", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, err := ReadStat(pid); err != nil || st.State != 'Z' {
		t.Fatalf("unreaped child: ReadStat = %+v, %v; want state Z", st, err)
	}
	cmd.Wait()
	if !Exited(pid) {
		t.Fatalf("reaped child %d does not read as exited", pid)
	}
	if _, err := ReadStat(pid); !os.IsNotExist(err) {
		t.Fatalf("reaped child: ReadStat error = %v, want not exist", err)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("30778 (cat) R 30774 30774 26697 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 647594 3133440"))
	f.Add([]byte("1 ()) Z"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStat(b)
		if err != nil && st != (Stat{}) {
			t.Fatalf("ParseStat(%q) = %+v with error %v", b, st, err)
		}
	})
}
