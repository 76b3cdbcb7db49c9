// Package gen holds Souk's generated code: Go for the protobuf packages under
// go/, and the OpenAPI documents of the JSON gateways under openapi/.
package gen

import "embed"

// OpenAPI holds the generated OpenAPI (Swagger 2) documents, served by the
// gateways at /openapi/.
//
//go:embed openapi
var OpenAPI embed.FS
