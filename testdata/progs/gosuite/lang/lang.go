// Package lang canonicalizes language tags with golang.org/x/text.
package lang

import "golang.org/x/text/language"

func Canon(s string) (string, error) {
	t, err := language.Parse(s)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}
