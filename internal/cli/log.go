package cli

import (
	"io"
	"log/slog"
)

func slogVerbose(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
