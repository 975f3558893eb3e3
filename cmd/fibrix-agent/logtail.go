package main

import (
	"bytes"
	"strings"
	"sync"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

// logTail keeps the last lines the agent logged, to send with its report so
// staff see on the machine's timeline what the agent did. Secrets (the
// one-time token, which errors about the plan's URL would carry) are
// replaced before a line is kept.
type logTail struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	max     int
	secrets []string
}

func newLogTail(max int, secrets ...string) *logTail {
	l := &logTail{max: max}
	for _, s := range secrets {
		if s != "" {
			l.secrets = append(l.secrets, s)
		}
	}
	return l
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.add(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *logTail) add(line string) {
	for _, s := range l.secrets {
		line = strings.ReplaceAll(line, s, "REDACTED")
	}
	line = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(line, "?"))
	if len(line) > inventory.MaxLogLine {
		line = line[:inventory.MaxLogLine-len("…")] + "…"
		line = strings.ToValidUTF8(line, "")
	}
	l.lines = append(l.lines, line)
	if len(l.lines) > l.max {
		l.lines = l.lines[len(l.lines)-l.max:]
	}
}

// Lines returns a copy of the kept lines, oldest first.
func (l *logTail) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
