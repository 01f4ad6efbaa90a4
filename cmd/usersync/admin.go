package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/usersync/usersync/config"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/service"
	"github.com/usersync/usersync/web"
)

// newAdmin builds the admin page over the API's service (svc, which
// opts.Service is too), so that it validates, seals, audits and schedules
// exactly as the API does. Its
// session cookies are signed with a key derived from the secret key and
// the API token: every replica with the same two reads them, and a new
// token signs everyone out.
func newAdmin(cfg *config.Config, svc *service.Service, store directory.Store, log *slog.Logger) (http.Handler, error) {
	key, err := web.SessionKey(cfg.SecretKey, cfg.APIToken)
	if err != nil {
		return nil, fmt.Errorf("USERSYNC_SECRET_KEY: %w", err)
	}
	h, err := web.New(web.Options{
		Service:    svc,
		Store:      store,
		Token:      cfg.APIToken,
		SessionKey: key,
		Logger:     log,
	})
	if err != nil {
		return nil, fmt.Errorf("admin page: %w", err)
	}
	return h, nil
}
