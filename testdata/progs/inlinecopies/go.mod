module example.com/inlinecopies

go 1.18

require (
	golang.org/x/text v0.3.5
	gopkg.in/yaml.v2 v2.2.2
)
