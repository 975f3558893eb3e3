package portal

import (
	"github.com/gofiber/fiber/v2"
)

// deployKeysJSON is the staff keys every machine deploy installs.
type deployKeysJSON struct {
	Keys []string `json:"keys"`
}

func (s *Server) apiAdminDeployKeysGet(c *fiber.Ctx) error {
	keys, err := s.store.DeploySSHKeys(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(deployKeysJSON{Keys: keys})
}

// apiAdminDeployKeysPut replaces the list; every key is checked like a
// customer's, and one bad key refuses the whole list.
func (s *Server) apiAdminDeployKeysPut(c *fiber.Ctx) error {
	var req struct {
		Keys *[]string `json:"keys"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Keys == nil {
		return errMissing("keys")
	}
	keys, err := s.store.SetDeploySSHKeys(c.UserContext(), s.actor(c), *req.Keys)
	if err != nil {
		return err
	}
	return c.JSON(deployKeysJSON{Keys: keys})
}
