// Package bindata holds the text/template files for every object the
// operator creates for a MetalLB object; pkg/render executes them. They are
// embedded in the binary so the one image carries them.
package bindata

import "embed"

// FS holds every template: */*.yaml.
//
//go:embed */*.yaml
var FS embed.FS
