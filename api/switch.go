package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// switchDirectory is POST /users/switch-directory: the migration step that
// hands existing local accounts to a profile, whose next sync adopts them
// by username instead of reporting them as conflicts. It answers 200 with
// one result per username (directory.SwitchResult); a directory that no
// profile owns is a 422 on directoryKey, as a body naming a missing thing
// is elsewhere (csv.documentId).
func (s *server) switchDirectory(c *gin.Context) error {
	var req struct {
		Usernames    []string `json:"usernames"`
		DirectoryKey string   `json:"directoryKey"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	out, err := s.svc.SwitchDirectory(c.Request.Context(), req.DirectoryKey, req.Usernames)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"directoryKey": out.DirectoryKey, "profileId": out.ProfileID, "switched": out.Switched,
		"results": out.Results})
	return nil
}
