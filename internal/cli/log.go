package cli

import (
	"io"
	"log/slog"
	"path/filepath"
)

func slogVerbose(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func dirOf(name string) string { return filepath.Dir(name) }
