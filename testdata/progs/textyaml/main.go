// Command textyaml uses vulnerable versions of golang.org/x/text
// (GO-2021-0113: language.Parse) and gopkg.in/yaml.v2 (GO-2021-0061 and
// others: yaml.Unmarshal). It is a fixture for reach's tests.
//
// With the argument "steps" it prints "ready", then reads commands from
// standard input, one a line, and answers each with "ok": "yaml" calls
// yaml.Unmarshal, "text" calls language.Parse (both from main.steps), so
// that a test decides when each runs.
package main

import (
	"bufio"
	"fmt"
	"os"

	"golang.org/x/text/language"
	"gopkg.in/yaml.v2"
)

type config struct {
	Lang string `yaml:"lang"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "steps" {
		steps()
		return
	}
	var c config
	if err := yaml.Unmarshal([]byte("lang: en-US\n"), &c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tag, err := language.Parse(c.Lang)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(tag)
}

func steps() {
	// Called through variables, so that main.main keeps the one direct call
	// of each.
	unmarshal, parse := yaml.Unmarshal, language.Parse
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var err error
		switch cmd := sc.Text(); cmd {
		case "yaml":
			var c config
			err = unmarshal([]byte("lang: en-US\n"), &c)
		case "text":
			_, err = parse("en-US")
		default:
			err = fmt.Errorf("unknown command %q", cmd)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ok")
	}
}
