package report

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrUnknownFormat reports an output format reach does not write.
var ErrUnknownFormat = errors.New("unknown output format")

// RenderFunc writes a report in one output format.
type RenderFunc func(w io.Writer, r *Report) error

// Formats lists the output formats by name, in the order to show them.
var Formats = []string{"text", "json", "sarif", "openvex"}

// Renderer returns the renderer for the named format.
func Renderer(format string) (RenderFunc, error) {
	switch format {
	case "text":
		return WriteText, nil
	case "json":
		return WriteJSON, nil
	case "sarif":
		return WriteSARIF, nil
	case "openvex":
		return WriteOpenVEX, nil
	}
	return nil, fmt.Errorf("format %q: %w: use one of %s", format, ErrUnknownFormat, strings.Join(Formats, ", "))
}
