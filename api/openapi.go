package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDoc is the OpenAPI 3 document of this API, kept beside the code
// it describes: TestOpenAPIMatchesRoutes fails when a route and the
// document disagree, so neither can change alone.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI serves the document; it needs no token, so that tools can read
// it before they have one.
func (s *server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", openAPIDoc)
}
