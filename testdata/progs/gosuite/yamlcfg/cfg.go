// Package yamlcfg reads a configuration with gopkg.in/yaml.v2.
package yamlcfg

import "gopkg.in/yaml.v2"

type Config struct {
	Lang string `yaml:"lang"`
}

func Load(b []byte) (Config, error) {
	var c Config
	err := yaml.Unmarshal(b, &c)
	return c, err
}
