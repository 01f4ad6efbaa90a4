package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/provider"
)

// defaultPickerLimit is the page size of the picker when ?limit= is absent
// (the API's default page).
const defaultPickerLimit = 100

// listProviderGroups is GET /profiles/{id}/provider-groups: one page of
// the provider's groups for the picker, read live with the stored profile's
// credentials.
func (s *server) listProviderGroups(c *gin.Context) error {
	ctx := c.Request.Context()
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	if opt.Limit == 0 {
		opt.Limit = defaultPickerLimit
	}
	page, err := s.svc.ProviderGroups(ctx, c.Param("id"), strings.TrimSpace(c.Query("search")), opt.Cursor, opt.Limit)
	if err != nil {
		return err
	}
	out := directory.Page[provider.Group]{Items: page.Items, NextCursor: page.Next}
	if out.Items == nil {
		out.Items = []provider.Group{}
	}
	c.JSON(http.StatusOK, out)
	return nil
}
