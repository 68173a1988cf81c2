package queue

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// serverLogger sends the embedded server's log to slog. Its notices (the
// start-up banner and the like) go to debug; warnings and errors stay.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.emit(slog.LevelDebug, format, v) }
func (l serverLogger) Warnf(format string, v ...any)   { l.emit(slog.LevelWarn, format, v) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.emit(slog.LevelError, format, v) }
func (l serverLogger) Errorf(format string, v ...any)  { l.emit(slog.LevelError, format, v) }
func (l serverLogger) Debugf(format string, v ...any)  { l.emit(slog.LevelDebug, format, v) }
func (l serverLogger) Tracef(format string, v ...any)  { l.emit(slog.LevelDebug, format, v) }

func (l serverLogger) emit(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if l.log.Enabled(ctx, level) {
		l.log.Log(ctx, level, fmt.Sprintf(format, v...))
	}
}

// redact hides credentials (user:password, or a token in the user part)
// in a comma-separated list of server URLs.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		at := strings.LastIndex(p, "@")
		if at < 0 {
			continue
		}
		scheme := ""
		if s := strings.Index(p, "://"); s >= 0 && s < at {
			scheme = p[:s+3]
		}
		parts[i] = scheme + "xxxxx" + p[at:]
	}
	return strings.Join(parts, ",")
}
