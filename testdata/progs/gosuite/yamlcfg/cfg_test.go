package yamlcfg

import "testing"

func TestLoad(t *testing.T) {
	c, err := Load([]byte("lang: en\n"))
	if err != nil || c.Lang != "en" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
}
