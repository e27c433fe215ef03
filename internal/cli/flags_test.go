package cli

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestFlagsFirst(t *testing.T) {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("format", "text", "")
	fs.Bool("v", false, "")
	tests := []struct {
		args, want []string
	}{
		{[]string{"a", "-format", "json", "b"}, []string{"-format", "json", "--", "a", "b"}},
		{[]string{"-v", "a", "-format=json"}, []string{"-v", "-format=json", "--", "a"}},
		// A boolean flag takes no value: "a" stays an argument.
		{[]string{"a", "-v", "b"}, []string{"-v", "--", "a", "b"}},
		// "--" ends the flags; "-" is an argument.
		{[]string{"a", "--", "-format", "-"}, []string{"--", "a", "-format", "-"}},
		{[]string{"-", "a"}, []string{"--", "-", "a"}},
		// An unknown flag stays a flag, for Parse to refuse.
		{[]string{"a", "-nope", "b"}, []string{"-nope", "--", "a", "b"}},
		// A missing value: Parse says so.
		{[]string{"a", "-format"}, []string{"-format"}},
	}
	for _, tt := range tests {
		if got := flagsFirst(fs, tt.args); !slices.Equal(got, tt.want) {
			t.Errorf("flagsFirst(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}
