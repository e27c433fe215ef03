// Package textlang reads a language tag from a YAML document with
// vulnerable versions of gopkg.in/yaml.v2 (Unmarshal) and
// golang.org/x/text (language.Parse, GO-2021-0113). Its test binary, unlike
// a program, has build information without dependencies: reach's tests
// check that the modules are still found.
package textlang

import (
	"golang.org/x/text/language"
	"gopkg.in/yaml.v2"
)

type config struct {
	Lang string `yaml:"lang"`
}

// Lang returns the language tag of the document's "lang" key.
func Lang(doc string) (string, error) {
	var c config
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		return "", err
	}
	tag, err := language.Parse(c.Lang)
	if err != nil {
		return "", err
	}
	return tag.String(), nil
}
