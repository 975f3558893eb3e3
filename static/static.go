// Package static holds the portal's browser assets, embedded so the binary
// serves them without a separate deploy step.
package static

import "embed"

// FS holds the vendored htmx, Pico and xterm.js files and the portal's own stylesheet and scripts,
// rooted at this directory (for example "vendor/htmx.min.js").
//
//go:embed vendor/*.js vendor/*.css vendor/xterm app.css app.js console.js
var FS embed.FS
