// Command textyaml uses vulnerable versions of golang.org/x/text
// (GO-2021-0113: language.Parse) and gopkg.in/yaml.v2 (GO-2021-0061 and
// others: yaml.Unmarshal). It is a fixture for reach's tests.
package main

import (
	"fmt"
	"os"

	"golang.org/x/text/language"
	"gopkg.in/yaml.v2"
)

type config struct {
	Lang string `yaml:"lang"`
}

func main() {
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
