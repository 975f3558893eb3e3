// Package static holds the portal's browser assets, embedded so the binary
// serves them without a separate deploy step.
package static

import "embed"

// FS holds the vendored htmx and Pico files and the portal's own stylesheet,
// rooted at this directory (for example "vendor/htmx.min.js").
//
//go:embed vendor/*.js vendor/*.css app.css app.js
var FS embed.FS
