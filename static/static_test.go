package static

import (
	"io/fs"
	"strings"
	"testing"
)

func TestEmbeddedFiles(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		contains string
	}{
		{name: "htmx", path: "vendor/htmx.min.js", contains: "2.0.11"},
		{name: "pico", path: "vendor/pico.min.css", contains: "Pico CSS"},
		{name: "app stylesheet", path: "app.css"},
		{name: "xterm", path: "vendor/xterm/xterm.js", contains: "Terminal"},
		{name: "xterm stylesheet", path: "vendor/xterm/xterm.css", contains: ".xterm"},
		{name: "xterm licence", path: "vendor/xterm/LICENSE", contains: "The xterm.js authors"},
		{name: "console script", path: "console.js", contains: "WebSocket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := fs.ReadFile(FS, tt.path)
			if err != nil {
				t.Fatalf("read %s: %v", tt.path, err)
			}
			if len(b) == 0 {
				t.Fatalf("%s is empty", tt.path)
			}
			if tt.contains != "" && !strings.Contains(string(b), tt.contains) {
				t.Errorf("%s does not contain %q", tt.path, tt.contains)
			}
		})
	}
}
